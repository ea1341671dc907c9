import Testing

/// Parent of every suite that touches /dev/kvm: serialized (nested suites inherit it), and skipped with the
/// reason printed where /dev/kvm cannot be opened.
@Suite(.serialized, .enabled(if: KVMAvailability.available, KVMAvailability.skipReason))
struct KVMIntegration {}
