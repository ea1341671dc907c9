/// What `gmemctl --version` prints: the package version, and the `git describe` of the tree the binary was
/// built from, recorded at build time by Plugins/BuildRevision (absent when git or the checkout was not there).
enum BuildVersion {
    static let package = "0.1.0"

    static var text: String {
        guard let revision = BuildRevision.describe else { return package }
        return "\(package) (\(revision))"
    }
}
