// Manifests written in tests: one builder for every test target, so their YAML is not written out again.

/// A one-guest manifest. `mappings` and ranges are YAML flow lines; `listeners` are names.
public func manifestYAML(
    name: String = "guest", vm: String = "sw-protected", blocks: [String], mappings: [String],
    defaultState: String = "private", shared: [String] = [], private privateRanges: [String] = [],
    listeners: [String] = []
) -> String {
    var text = """
        apiVersion: gmemctl/v1
        kind: GuestMemory
        metadata:
          name: \(name)
        spec:
          vm:
            type: \(vm)
          blocks:

        """
    for block in blocks { text += "    - \(block)\n" }
    text += "  mappings:\n"
    for mapping in mappings { text += "    - \(mapping)\n" }
    text += "  layout:\n    default: \(defaultState)\n"
    text += shared.isEmpty ? "    shared: []\n" : "    shared:\n" + shared.map { "      - \($0)\n" }.joined()
    text +=
        privateRanges.isEmpty
        ? "    private: []\n" : "    private:\n" + privateRanges.map { "      - \($0)\n" }.joined()
    if !listeners.isEmpty {
        text += "  listeners:\n" + listeners.map { "    - { name: \($0) }\n" }.joined()
    }
    return text
}
