/// The keys each manifest object accepts. One list for the loader (unknown-key checks, suggestions)
/// and the JSON Schema, so that the two cannot disagree.
public enum ManifestKeys {
    public static let root = ["apiVersion", "kind", "metadata", "spec"]
    public static let metadata = ["name"]
    public static let spec = ["vm", "blocks", "mappings", "layout", "listeners"]
    public static let vm = ["type"]
    public static let block = ["name", "size", "backend"]
    public static let backend = ["type", "shared"]
    public static let shared = ["source", "pageSize", "prealloc"]
    public static let mapping = ["block", "offset", "size", "gpa"]
    public static let layout = ["default", "shared", "private"]
    public static let range = ["gpa", "size"]
    public static let listener = ["name"]

    public static let requiredRoot = ["apiVersion", "kind", "metadata", "spec"]
    public static let requiredMetadata = ["name"]
    public static let requiredSpec = ["blocks"]
    public static let requiredBlock = ["name", "size", "backend"]
    public static let requiredBackend = ["type"]
    public static let requiredShared = ["source"]
    public static let requiredMapping = ["block", "size", "gpa"]
    public static let requiredRange = ["gpa", "size"]
    public static let requiredListener = ["name"]
}
