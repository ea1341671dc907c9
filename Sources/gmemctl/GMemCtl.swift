import ArgumentParser

@main
struct GMemCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gmemctl",
        abstract: "Provision KVM guest memory (guest_memfd) from declarative YAML manifests.",
        discussion: """
            Exit codes, the same in every command:
              0   success, nothing to change
              1   error: bad manifest, unreadable file, missing capability, failed operation
              2   success with changes or drift present
              64  bad command-line usage

            Example:
              gmemctl validate examples/shared-in-place.yaml
            """,
        subcommands: [
            Validate.self, CapsCommand.self, ProfilesCommand.self, PlanCommand.self, ApplyCommand.self,
            DiffCommand.self, GetCommand.self, ConvertCommand.self, DestroyCommand.self, EventsCommand.self, AgentCommand.self,
            ConformanceCommand.self,
            Schema.self,
        ]
    )
}
