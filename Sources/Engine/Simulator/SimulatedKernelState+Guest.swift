import Config
import GmemCore

/// Guest accesses (what a vCPU load or store reaches), for tests that mirror the kernel's selftests: the
/// page comes from where `guestFaultSource` says, so a guest_memfd-only slot never reads its shared backing.
/// The guest may touch private pages; the host may not.
extension SimulatedKernelState {
    mutating func guestAccess(
        vm fd: Int32, gpa: UInt64, write bytes: [UInt8]?, count: Int,
        source: GuestFaultSource
    ) throws(KernelError) -> [UInt8] {
        switch source {
        case .none:
            throw .simulated(SimErrno.efault)
        case .userspace(let address):
            if let bytes {
                try write(address: address, bytes: bytes)
                return bytes
            }
            return try read(address: address, count: count)
        case .guestMemfd(let offset):
            let vm = try vmForIoctl(fd)
            guard let slot = vm.slots.values.first(where: { $0.gpaRange.contains(gpa) }),
                let id = slot.guestMemfdFile, var file = files[id]
            else { throw .simulated(SimErrno.efault) }
            let page = offset / pageSize
            let inPage = Int(offset % pageSize)
            let length = bytes?.count ?? count
            guard inPage + length <= Int(pageSize) else { throw .simulated(SimErrno.einval) }
            touch(&file, page * pageSize..<(page + 1) * pageSize)
            if let bytes {
                file.contents.write(page: page, pageSize: pageSize, offset: inPage, bytes: bytes[...])
            }
            let result = bytes ?? file.contents.read(page: page, offset: inPage, count: count)
            files[id] = file
            return result
        }
    }
}
