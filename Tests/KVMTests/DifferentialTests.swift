import GmemCore
import GmemKVM
import GmemSimulator
import Testing

extension KVMIntegration {
    /// The same call sequences on the real kernel and on `SimulatedKernel(Profiles.linux618PVM)`: every step
    /// must end the same way (success and its value, errno or SIGBUS) and so must the end state (residency of
    /// each mapping). A mismatch prints the whole sequence as a table. Steps marked with `expecting` must also
    /// give the result kvm-uapi.md documents on the real kernel.
    @Suite struct Differential {
        @Test func thereAreEnoughSequences() {
            #expect(DiffSequences.all.count >= 30)
            #expect(Set(DiffSequences.all.map(\.name)).count == DiffSequences.all.count, "sequence names are unique")
        }

        @Test(arguments: DiffSequences.all)
        func kernelAndSimulatorAgree(_ sequence: DiffSequence) throws {
            let report = try DiffReport.compare(sequence)
            if !report.mismatches.isEmpty || !report.documentationDeviations.isEmpty {
                print(report.table)
            }
            #expect(report.mismatches.isEmpty,
                    "\(report.mismatches.count) step(s) differ between kernel and simulator:\n\(report.table)")
            #expect(report.documentationDeviations.isEmpty,
                    "\(report.documentationDeviations.count) step(s) differ from kvm-uapi.md:\n\(report.table)")
        }

        /// The runner must leave no fd or mapping of the real kernel behind.
        @Test func sequencesReleaseEverything() throws {
            let before = try openKVMRelatedFds()
            for sequence in DiffSequences.all.prefix(12) { _ = try DiffReport.compare(sequence) }
            #expect(try openKVMRelatedFds() == before)
        }
    }
}
