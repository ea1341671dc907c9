import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `--color auto|always|never` (any command): colour on a terminal only by default, never when NO_COLOR is set
/// (https://no-color.org) unless asked for with `always`.
enum ColorChoice: String, CaseIterable, Sendable {
    case auto, always, never
}

enum Terminal {
    /// Set once by `main` before any command runs.
    nonisolated(unsafe) static var colorChoice: ColorChoice = .auto

    static func colorEnabled(for descriptor: Int32) -> Bool {
        switch colorChoice {
        case .always: return true
        case .never: return false
        case .auto: return isatty(descriptor) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        }
    }

    /// Takes `--color VALUE` / `--color=VALUE` out of the arguments (it applies to every command).
    static func takeColorOption(from arguments: [String]) throws -> [String] {
        var rest: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" { rest += arguments[index...]; break }
            var value: String?
            if argument == "--color" {
                guard index + 1 < arguments.count else { throw CLIError.usage("--color takes auto, always or never") }
                value = arguments[index + 1]
                index += 1
            } else if argument.hasPrefix("--color=") {
                value = String(argument.dropFirst("--color=".count))
            }
            if let value {
                guard let choice = ColorChoice(rawValue: value) else {
                    throw CLIError.usage("--color takes auto, always or never, not \(value)")
                }
                colorChoice = choice
            } else {
                rest.append(argument)
            }
            index += 1
        }
        return rest
    }
}
