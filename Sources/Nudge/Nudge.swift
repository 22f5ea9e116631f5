// The umbrella module: `import Nudge` brings in the engine, layers, configs and run tracking.
// It also holds what joins RL to run tracking (Runs/: RLRunner, BanditLab, TabularLab), since
// NudgeRL does not import NudgeReport.
@_exported import NudgeNN
@_exported import NudgeConfig
@_exported import NudgeReport
@_exported import NudgeTensor
@_exported import NudgePolicyGradient
@_exported import NudgeRL
@_exported import NudgeLM
@_exported import NudgeAlign
