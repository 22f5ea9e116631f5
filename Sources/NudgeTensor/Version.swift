// The library version, reported by `nudge doctor` and written into run directories.

/// Nudge's version.
public enum NudgeVersion {
    public static let string = "0.1.0"
}
