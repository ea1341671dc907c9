import Config
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

/// What output needs of a host: its label and the names of its guest_memfd flags. A local host gives
/// them, and so does an agent's hello.
struct HostView {
    var label: String
    var flagSet: GuestMemfdFlagSet
}

extension HostView {
    init(_ host: Host) { self.init(label: host.label, flagSet: host.capabilities.guestMemfdFlagSet) }
    init(_ hello: HelloResult) { self.init(label: hello.hostLabel, flagSet: hello.flagSet) }
}

/// Text for people: plans like `terraform plan`, diffs and live state as short aligned lines.
enum HumanOutput {
    static func plan(_ plan: Plan, host: Host) -> String { self.plan(plan, host: HostView(host)) }

    /// "1 step", "2 steps".
    static func plural(_ count: Int, _ word: String, _ words: String? = nil) -> String {
        "\(count) \(count == 1 ? word : words ?? word + "s")"
    }

    static func plan(_ plan: Plan, host: HostView, color: Bool = false) -> String {
        let style = Style(enabled: color)
        // One buffer, appended to: a plan of 100,000 ranges has 200,000 lines, and a String per line joined
        // at the end cost a quarter of `plan`.
        var out = "Plan for guest \(plan.guest) on \(host.label):"
        out.reserveCapacity(80 * (plan.transitions.count + plan.operations.count) + 256)
        func line(_ text: String) {
            out.append("\n")
            out.append(text)
        }
        // Replacements first: they are what a reader must not miss.
        for text in replacements(plan.replacements, style: style) { line(text) }
        for (block, reason) in plan.resolutions.sorted(by: { $0.key < $1.key }) {
            line("  block \(block): \(reason)")
        }
        if !plan.transitions.isEmpty {
            line("Transitions:")
            let marker = "\n  " + style.yellow("~") + " "
            for transition in plan.transitions {
                out.append(marker)
                describe(transition, into: &out)
            }
        }
        if plan.operations.isEmpty {
            line("No changes: the host matches the manifest.")
        } else {
            line("Operations (\(plan.operations.count), in order):")
            operations(plan.operations, flagSet: host.flagSet) { line($0) }
        }
        for note in plan.notes { line("note: \(note)") }
        return out
    }

    /// `-/+ block ram: replaced (size 64 MiB -> 128 MiB)` and what is lost, terraform style.
    static func replacements(_ replacements: [BlockReplacement], style: Style) -> [String] {
        guard !replacements.isEmpty else { return [] }
        let destroying = replacements.filter(\.destroysData).count
        var lines = [
            "Replacements (\(plural(replacements.count, "block")) torn down and built again; "
                + (destroying == 0 ? "no data lost" : "\(style.red("contents lost")) in \(plural(destroying, "block"))")
                + "):"
        ]
        for replacement in replacements {
            let marker = replacement.reason == .removed ? style.red("-  ") : style.red("-") + "/" + style.green("+")
            let verb: String
            switch replacement.reason {
            case .changed: verb = "replaced"
            case .incomplete: verb = "rebuilt (an earlier apply stopped before it was complete)"
            case .removed: verb = "removed (not in the manifest)"
            }
            lines.append("  \(marker) block \(replacement.block): \(verb)")
            for change in replacement.changes where !(replacement.reason == .removed && change == "not in the manifest")
            {
                lines.append("        \(change)")
            }
            lines.append(
                "        "
                    + (replacement.destroysData
                        ? style.red("destroys data: \(replacement.lost)") : "loses: \(replacement.lost)"))
        }
        return lines
    }

    static func operations(_ operations: [PlanOperation], flagSet: GuestMemfdFlagSet) -> [String] {
        var lines: [String] = []
        lines.reserveCapacity(operations.count)
        self.operations(operations, flagSet: flagSet) { lines.append($0) }
        return lines
    }

    /// `  12. CALL arguments` for each operation, numbers right-aligned.
    static func operations(_ operations: [PlanOperation], flagSet: GuestMemfdFlagSet, _ emit: (String) -> Void) {
        let width = String(operations.count).count
        var text = ""
        for (index, operation) in operations.enumerated() {
            text.removeAll(keepingCapacity: true)
            let number = String(index + 1)
            text.append("  ")
            for _ in number.utf8.count..<max(width, number.utf8.count) { text.append(" ") }
            text.append(number)
            text.append(". ")
            text.append(operation.call)
            text.append(" ")
            text.append(operation.arguments(flagSet: flagSet))
            emit(text)
        }
    }

    static func describe(_ transition: BlockTransition) -> String {
        var text = ""
        describe(transition, into: &text)
        return text
    }

    /// `ram [0x0-0xfff] private -> shared (4 KiB; gpa 0x0-0xfff)`, appended to `out`.
    static func describe(_ transition: BlockTransition, into out: inout String) {
        out.append(transition.block)
        out.append(" [")
        appendHex(transition.offset, to: &out)
        out.append("-")
        appendHex(transition.offset + transition.size - 1, to: &out)
        out.append("] ")
        out.append(transition.from?.rawValue ?? "new")
        out.append(" -> ")
        out.append(transition.to.rawValue)
        out.append(" (")
        out.append(formatSize(transition.size))
        out.append("; ")
        for (index, window) in transition.gpaRanges.enumerated() {
            if index > 0 { out.append(", ") }
            out.append("gpa ")
            appendHex(window.lowerBound, to: &out)
            out.append("-")
            appendHex(window.upperBound - 1, to: &out)
        }
        out.append(")")
    }

    /// `hex(value)` without a temporary String.
    static func appendHex(_ value: UInt64, to out: inout String) {
        // The digits are written into a stack buffer and appended once: appending scalar by scalar costs a
        // string-growth check per digit, which showed in plans of 100,000 ranges.
        let digits: StaticString = "0123456789abcdef"
        let count = value == 0 ? 1 : (67 - value.leadingZeroBitCount) / 4
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 18) { buffer in
            buffer[0] = UInt8(ascii: "0")
            buffer[1] = UInt8(ascii: "x")
            var rest = value
            for index in stride(from: count + 1, through: 2, by: -1) {
                buffer[index] = digits.utf8Start[Int(rest & 0xF)]
                rest >>= 4
            }
            out.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<(count + 2)]), as: UTF8.self))
        }
    }

    static func report(_ report: ApplyReport, flagSet: GuestMemfdFlagSet) -> String {
        var lines: [String] = []
        let total = report.completed.count + report.notRun.count + (report.failure == nil ? 0 : 1)
        if let failure = report.failure {
            lines.append("error: step \(report.completed.count + 1) of \(total) failed: \(failure)")
            lines.append(
                "done: \(plural(report.completed.count, "step")); not run: \(plural(report.notRun.count, "step"))")
            for operation in report.notRun.prefix(10) {
                lines.append("  not run: \(operation.call) \(operation.arguments(flagSet: flagSet))")
            }
            if report.notRun.count > 10 { lines.append("  ... and \(report.notRun.count - 10) more") }
            for event in report.compensations {
                lines.append(
                    "  listener \(event.listener) told map \(hex(event.gpa))+\(hex(event.size)) again (the conversion did not happen)"
                )
            }
            lines.append("The host's state was recorded as it is; `gmemctl diff` shows what remains to do.")
        } else {
            lines.append(
                "Applied \(plural(report.completed.count, "step"))"
                    + (report.retries > 0 ? " (\(plural(report.retries, "EAGAIN retry", "EAGAIN retries")))" : "") + "."
            )
        }
        return lines.joined(separator: "\n")
    }

    static func diff(_ diff: StateDiff, host: Host) -> String { self.diff(diff, host: HostView(host)) }

    static func diff(_ diff: StateDiff, host: HostView, color: Bool = false) -> String {
        guard diff.hasChanges else { return "No drift: guest \(diff.guest) on \(host.label) matches the manifest." }
        let style = Style(enabled: color)
        var lines = ["Drift for guest \(diff.guest) on \(host.label):"]
        lines += replacements(diff.replacements, style: style)
        if !diff.replacements.isEmpty { lines.append("Differences:") }
        for entry in diff.entries {
            let sign: String
            switch entry.change {
            case .missing: sign = style.green("+")
            case .extra: sign = style.red("-")
            case .changed: sign = style.yellow("~")
            }
            var text = "  \(sign) \(entry.kind) \(entry.name)"
            switch entry.change {
            case .missing: text += ": missing (wanted \(entry.expected ?? "present"))"
            case .extra: text += ": not in the manifest (\(entry.actual ?? "present"))"
            case .changed: text += ": is \(entry.actual ?? "?"), manifest says \(entry.expected ?? "?")"
            }
            if !entry.gpaRanges.isEmpty { text += " at gpa " + entry.gpaRanges.joined(separator: ", ") }
            lines.append(text)
        }
        return lines.joined(separator: "\n")
    }

    static func live(_ state: LiveState, observation: GuestObservation?, host: Host) -> String {
        live(state, observation: observation, host: HostView(host))
    }

    static func live(_ state: LiveState, observation: GuestObservation?, host: HostView) -> String {
        guard state.exists || !state.blocks.isEmpty else { return "guest \(state.name): not on \(host.label)" }
        var lines = ["guest \(state.name) on \(host.label):"]
        lines.append("  vm: \(state.vmType?.rawValue ?? "?") fd \(state.vmFD.map(String.init) ?? "-")")
        for block in state.blocks {
            let observed = observation?.blocks.first { $0.name == block.name }
            var text =
                "  block \(block.name): \(block.backend.name), \(formatSize(block.size)), gmem fd \(block.guestMemfd.map(String.init) ?? "-") flags \(KVMConstants.describeGuestMemfdFlags(block.guestMemfdFlags, in: host.flagSet))"
            if let fd = block.sharedFD { text += ", shared fd \(fd)" }
            if let address = block.hostAddress { text += ", host \(hex(address))" }
            if let observed, let source = observed.residentSource {
                text +=
                    source == .unavailable
                    ? ", host-resident unknown (\(source.explanation))"
                    : ", host-resident \(formatSize(observed.residentBytes)) (\(source.explanation))"
            }
            lines.append(text)
            let privateBytes = block.layout.runs.filter { $0.value == .private }.reduce(UInt64(0)) {
                $0 + $1.range.byteCount
            }
            let sharedBytes = block.layout.runs.filter { $0.value == .shared }.reduce(UInt64(0)) {
                $0 + $1.range.byteCount
            }
            lines.append(
                "    layout: \(plural(block.layout.runCount, "run")), private \(formatSize(privateBytes)), shared \(formatSize(sharedBytes))"
            )
        }
        for memslot in state.memslots.sorted(by: { $0.slot < $1.slot }) {
            let mapping = memslot.mapping
            lines.append(
                "  memslot \(memslot.slot): gpa \(hex(mapping.gpa))-\(hex(mapping.gpa + mapping.size - 1)) -> \(mapping.block)+\(hex(mapping.offset)) userspace \(hex(memslot.userspaceAddress))"
            )
        }
        if !state.listeners.isEmpty {
            lines.append(
                "  listeners: \(state.listeners.joined(separator: ", ")) (\(plural(state.events.count, "event")))")
        }
        if let failure = state.lastFailure { lines.append("  last operation did not finish: \(failure)") }
        return lines.joined(separator: "\n")
    }
}

func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}

extension HumanOutput {
    static func verification(_ report: VerificationReport) -> String {
        let passed = report.checks.filter(\.passed).count
        var lines = ["Verification: \(passed) of \(plural(report.checks.count, "check")) passed"]
        for check in report.checks {
            lines.append(
                "  \(check.passed ? "ok  " : "FAIL") \(check.kind.rawValue) \(check.block) gpa \(hex(check.gpa)): expected \(check.expected), observed \(check.observed)"
            )
        }
        for skipped in report.skipped { lines.append("  skipped: \(skipped)") }
        return lines.joined(separator: "\n")
    }
}
