// A line printed once, however often a loop asks for it (e.g. "Interrupted: saving" on every
// check of a stop signal after Ctrl-C).

/// A message printed once, however often it is asked for.
public final class Announcement: @unchecked Sendable {
    public let text: String
    private var done = false

    public init(_ text: String) { self.text = text }

    public func print() {
        guard !done else { return }
        done = true
        Swift.print(text)
    }
}
