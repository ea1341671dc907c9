import Config
import Foundation
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

/// `validate --output sarif`: SARIF 2.1.0 for code-scanning services, one result per diagnostic with its
/// region. Rule ids are stable: they name the kind of problem, not its wording.
enum SARIFOutput {
    struct Rule {
        var id: String
        var name: String
        var description: String
        /// Words of a diagnostic's summary that put it under this rule (first rule that matches wins).
        var matches: [String]
    }

    static let rules: [Rule] = [
        Rule(
            id: "GM001", name: "yaml-syntax", description: "The file is not valid YAML.", matches: ["YAML syntax error"]
        ),
        Rule(id: "GM002", name: "unreadable-file", description: "The file cannot be read.", matches: ["cannot read"]),
        Rule(
            id: "GM003", name: "unknown-key", description: "A key the manifest format does not have.",
            matches: ["unknown key"]),
        Rule(
            id: "GM004", name: "missing-field", description: "A required field is missing.",
            matches: ["missing required"]),
        Rule(
            id: "GM005", name: "wrong-type", description: "A value of the wrong type.",
            matches: ["must be a", "must be an"]),
        Rule(
            id: "GM006", name: "invalid-size", description: "A size or address that does not parse.",
            matches: ["unknown unit", "invalid"]),
        Rule(
            id: "GM007", name: "unsupported-value", description: "A value outside the allowed set.",
            matches: ["unsupported"]),
        Rule(
            id: "GM008", name: "misaligned", description: "A size, offset or address not aligned to its page size.",
            matches: ["not aligned"]),
        Rule(
            id: "GM009", name: "unknown-reference", description: "A reference to a block that does not exist.",
            matches: ["unknown block"]),
        Rule(
            id: "GM010", name: "out-of-bounds", description: "A range outside its block or outside mapped memory.",
            matches: ["exceeds", "runs past", "crosses the unmapped hole", "outside"]),
        Rule(
            id: "GM011", name: "overlap", description: "Ranges that overlap or are listed twice.",
            matches: ["overlaps", "already mapped", "listed both", "duplicate"]),
        Rule(
            id: "GM012", name: "private-on-default-vm", description: "Private memory on a VM type that has none.",
            matches: ["`default` VM"]),
        Rule(
            id: "GM013", name: "host-capability",
            description: "The target kernel cannot provide what the manifest needs.",
            matches: ["["]),
    ]
    static let otherRule = Rule(
        id: "GM000", name: "manifest-rule", description: "Any other manifest rule.", matches: [])

    static func rule(for diagnostic: Diagnostic) -> Rule {
        if diagnostic.summary.hasPrefix("[") { return rules[rules.count - 1] }
        return rules.dropLast().first { rule in rule.matches.contains { diagnostic.summary.contains($0) } } ?? otherRule
    }

    static func document(_ reports: [FileDiagnostics]) -> [String: Any] {
        let allRules = [otherRule] + rules
        let index = Dictionary(uniqueKeysWithValues: allRules.enumerated().map { ($1.id, $0) })
        let results: [[String: Any]] = reports.flatMap { report in
            report.diagnostics.map { diagnostic -> [String: Any] in
                let rule = rule(for: diagnostic)
                var region: [String: Any] = ["startLine": 1]
                var uri = report.file
                if let range = diagnostic.range {
                    uri = range.file
                    region = [
                        "startLine": range.start.line, "startColumn": range.start.column,
                        "endLine": range.end.line, "endColumn": range.end.column,
                    ]
                }
                var location: [String: Any] = [
                    "physicalLocation": ["artifactLocation": ["uri": uri], "region": region]
                ]
                if !diagnostic.path.isEmpty {
                    location["logicalLocations"] = [["fullyQualifiedName": diagnostic.path, "kind": "member"]]
                }
                let text =
                    diagnostic.detail.isEmpty ? diagnostic.summary : "\(diagnostic.summary): \(diagnostic.detail)"
                return [
                    "ruleId": rule.id, "ruleIndex": index[rule.id] ?? 0,
                    "level": diagnostic.severity == .error ? "error" : "warning",
                    "message": ["text": text], "locations": [location],
                ]
            }
        }
        let driver: [String: Any] = [
            "name": "gmemctl", "version": BuildVersion.package, "semanticVersion": BuildVersion.package,
            "rules": allRules.map { ["id": $0.id, "name": $0.name, "shortDescription": ["text": $0.description]] },
        ]
        return [
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
            "runs": [
                [
                    "tool": ["driver": driver], "results": results,
                    "artifacts": reports.map { ["location": ["uri": $0.file]] },
                ]
            ],
        ]
    }

    static func text(_ reports: [FileDiagnostics]) -> String {
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: document(reports),
                options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// `apply --output junit`: a JUnit XML report for CI test views. The apply, each verification check and the
/// teardown are one testcase each; a failed check is a <failure>, a check that could not run is <skipped>.
enum JUnitOutput {
    struct Case {
        var name: String
        var className: String
        var failure: String?
        var skipped: String?
    }

    static func cases(_ outcome: ApplyOutcome) -> [Case] {
        let guest = outcome.plan.guest
        var cases = [
            Case(
                name: "apply \(guest) (\(HumanOutput.plural(outcome.report.completed.count, "step")))",
                className: "gmemctl.apply", failure: outcome.report.failure.map { "\($0)" })
        ]
        if let verification = outcome.verification {
            for check in verification.checks {
                cases.append(
                    Case(
                        name: "\(check.kind.rawValue) \(check.block) gpa \(hex(check.gpa))",
                        className: "gmemctl.verify",
                        failure: check.passed ? nil : "expected \(check.expected), observed \(check.observed)"))
            }
            for (number, reason) in verification.skipped.enumerated() {
                cases.append(Case(name: "skipped check \(number + 1)", className: "gmemctl.verify", skipped: reason))
            }
        }
        if let teardown = outcome.teardown {
            cases.append(
                Case(
                    name: "teardown \(guest)", className: "gmemctl.teardown", failure: teardown.failure.map { "\($0)" })
            )
        }
        return cases
    }

    static func text(_ outcome: ApplyOutcome) -> String {
        let all = cases(outcome)
        let failures = all.filter { $0.failure != nil }.count
        let skipped = all.filter { $0.skipped != nil }.count
        let suite = "gmemctl apply \(outcome.plan.guest) on \(outcome.host.label)"
        var lines = [
            #"<?xml version="1.0" encoding="UTF-8"?>"#,
            #"<testsuites name="gmemctl" tests="\#(all.count)" failures="\#(failures)" skipped="\#(skipped)">"#,
            #"  <testsuite name="\#(escape(suite))" tests="\#(all.count)" failures="\#(failures)" skipped="\#(skipped)" errors="0">"#,
        ]
        for testcase in all {
            let open = #"    <testcase name="\#(escape(testcase.name))" classname="\#(testcase.className)""#
            if let failure = testcase.failure {
                lines += [open + ">", #"      <failure message="\#(escape(failure))"/>"#, "    </testcase>"]
            } else if let reason = testcase.skipped {
                lines += [open + ">", #"      <skipped message="\#(escape(reason))"/>"#, "    </testcase>"]
            } else {
                lines.append(open + "/>")
            }
        }
        lines += ["  </testsuite>", "</testsuites>"]
        return lines.joined(separator: "\n")
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // XML 1.0 has no control characters other than tab, newline and carriage return.
                if character.value < 0x20 && character != "\t" && character != "\n" && character != "\r" {
                    out += "?"
                } else {
                    out.unicodeScalars.append(character)
                }
            }
        }
        return out
    }
}
