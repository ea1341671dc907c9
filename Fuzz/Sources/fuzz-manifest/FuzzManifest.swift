import Config

/// libFuzzer entry: any bytes are loaded and validated as a manifest. Nothing may trap, and whatever
/// validates must keep every length below the guest-physical limit (what the planner relies on).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let result = ManifestLoader.load(bytes: bytes, file: "fuzz.yaml")
    for diagnostic in result.diagnostics { _ = diagnostic.description }
    guard result.isValid, let manifest = result.manifest else { return 0 }
    for block in manifest.spec.blocks {
        precondition(block.size <= Manifest.guestAddressLimit, "block past the limit validated")
    }
    for mapping in manifest.spec.mappings {
        precondition(mapping.gpaRange.upperBound <= Manifest.guestAddressLimit, "mapping past the limit validated")
        precondition(NameRule.problem(mapping.block) == nil, "mapping of an invalid block name validated")
    }
    for range in manifest.spec.layout.shared + manifest.spec.layout.private {
        precondition(range.range.upperBound <= Manifest.guestAddressLimit, "layout range past the limit validated")
    }
    precondition(NameRule.problem(manifest.metadata.name) == nil, "invalid guest name validated")
    return 0
}

// SwiftPM links an executable's entry point under this name; hand control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

@_cdecl("fuzz_manifest_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments) { fuzzManifest($0, $1) }
}
