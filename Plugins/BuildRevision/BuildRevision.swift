import Foundation
import PackagePlugin

/// Writes `BuildRevision.swift` into the gmemctl target at build time: the `git describe` of the package's
/// tree when it is a git checkout, else nil. `gmemctl --version` prints it and runs no git itself, so a
/// binary keeps naming the tree it was built from wherever it is copied and whatever that tree becomes.
@main
struct BuildRevision: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("generated")
        // A prebuild command runs on every build, so a new commit or edit is seen; the script rewrites the file
        // only when its text changes, so an unchanged revision recompiles nothing.
        return [
            .prebuildCommand(
                displayName: "Recording the git revision for gmemctl --version",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [
                    "-c", Self.script, "build-revision", context.package.directoryURL.path,
                    output.appendingPathComponent("BuildRevision.swift").path,
                ],
                environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"],
                outputFilesDirectory: output
            )
        ]
    }

    /// `sh -c SCRIPT build-revision ROOT FILE`. Without git or outside a checkout the revision is nil.
    static let script = #"""
        set -u
        root=$1 file=$2
        # Only the characters a Swift string literal takes as they are (a tag may hold a quote).
        revision=$(git -C "$root" describe --always --dirty --tags 2>/dev/null | tr -cd 'A-Za-z0-9._+/-') || revision=""
        if [ -n "$revision" ]; then value="\"git $revision\""; else value=nil; fi
        mkdir -p "$(dirname "$file")"
        text="// Generated at build time by Plugins/BuildRevision; not in the repository.
        enum BuildRevision {
            static let describe: String? = $value
        }"
        if [ "$(cat "$file" 2>/dev/null)" != "$text" ]; then printf '%s\n' "$text" > "$file"; fi
        """#
}
