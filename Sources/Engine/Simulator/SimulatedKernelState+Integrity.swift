import Config
import Foundation
import GmemCore

/// What a simulated descriptor refers to, for checking a saved guest's descriptors against the kernel.
public enum SimulatedDescriptorKind: String, Sendable, Hashable {
    case kvmDevice = "/dev/kvm"
    case vm = "a VM"
    case guestMemfd = "a guest_memfd"
    case file = "a memfd or anonymous memory"
}

extension SimulatedKernelState {
    /// Every end and length a decoded state may hold: below 2^63, so no range length overflows an `Int`.
    static let decodedLimit = UInt64(Int64.max)

    /// What `fd` refers to, or nil when it is not open.
    public func kind(of fd: Int32) -> SimulatedDescriptorKind? {
        switch descriptors[fd] {
        case nil: return nil
        case .kvmDevice: return .kvmDevice
        case .vm(let id): return vms[id] == nil ? nil : .vm
        case .file(let id):
            guard let file = files[id] else { return nil }
            return file.gmem != nil ? .guestMemfd : .file
        }
    }

    /// The first inconsistency of a state decoded from a file (nil when it holds together): every
    /// descriptor names an object that exists, every range ends below 2^63 and inside its object, stored
    /// pages are one page long. A state built by this simulator always passes; a crafted or corrupted one is
    /// refused here rather than trapping later in the arithmetic that trusts these invariants.
    public func integrityProblem() -> String? {
        guard formatVersion == Self.currentFormatVersion else {
            return "kernel state format version \(formatVersion); this gmemctl reads \(Self.currentFormatVersion)"
        }
        let page = pageSize
        guard page.nonzeroBitCount == 1, page >= 4096, page <= 1 << 30 else {
            return "page size \(page) is not a page size"
        }
        guard descriptors[deviceDescriptor] == .kvmDevice else {
            return "the /dev/kvm descriptor \(deviceDescriptor) is not open"
        }
        for (fd, descriptor) in descriptors {
            guard fd >= 0, fd < nextDescriptor else {
                return "descriptor \(fd) is beyond the next free one (\(nextDescriptor))"
            }
            switch descriptor {
            case .kvmDevice: break
            case .vm(let id): if vms[id] == nil { return "descriptor \(fd) names VM \(id), which does not exist" }
            case .file(let id): if files[id] == nil { return "descriptor \(fd) names file \(id), which does not exist" }
            }
        }
        for (id, vm) in vms {
            guard vm.id == id, id < nextObjectID else { return "VM \(id) is filed under the wrong id" }
            if let problem = Self.problem(of: vm.attributes, within: Self.decodedLimit, "attributes of VM \(id)") {
                return problem
            }
            for (key, slot) in vm.slots {
                guard slot.slot == key else { return "memslot \(key) of VM \(id) is filed under the wrong number" }
                guard Self.fits(slot.guestPhysAddr, slot.memorySize, Manifest.guestAddressLimit),
                    Self.fits(slot.userspaceAddr, slot.memorySize, Self.decodedLimit),
                    Self.fits(slot.guestMemfdOffset, slot.memorySize, Self.decodedLimit)
                else {
                    return "memslot \(key) of VM \(id) runs past the address space"
                }
                if let file = slot.guestMemfdFile, files[file]?.gmem == nil {
                    return "memslot \(key) of VM \(id) is bound to file \(file), which is not a guest_memfd"
                }
            }
        }
        for (id, file) in files {
            let what = "file \(id)"
            guard file.id == id, id < nextObjectID else { return "\(what) is filed under the wrong id" }
            guard file.size <= Self.decodedLimit else { return "\(what) is \(file.size) bytes, more than 2^63" }
            if let huge = file.hugePageSize, huge.nonzeroBitCount != 1 || huge < page {
                return "\(what) has huge page size \(huge)"
            }
            for (map, name) in [
                (file.allocated, "allocated"), (file.uptodate, "up-to-date"), (file.hugeReserved, "hugetlb-reserved"),
            ] {
                if let map, let problem = Self.problem(of: map, within: Self.decodedLimit, "\(name) ranges of \(what)")
                {
                    return problem
                }
            }
            if let problem = Self.problem(of: file.contents, pageSize: page, "contents of \(what)") { return problem }
            if let gmem = file.gmem {
                guard vms[gmem.vm] != nil else {
                    return "guest_memfd \(what) belongs to VM \(gmem.vm), which does not exist"
                }
                if let problem = Self.problem(of: gmem.state, within: Self.decodedLimit, "state of \(what)")
                    ?? Self.problem(of: gmem.bindings, within: Self.decodedLimit, "bindings of \(what)")
                {
                    return problem
                }
            }
        }
        var previousEnd: UInt64 = 0
        for (index, mapping) in mappings.enumerated() {
            guard Self.fits(mapping.address, mapping.length, Self.decodedLimit), mapping.length > 0,
                Self.fits(mapping.fileOffset, mapping.length, Self.decodedLimit)
            else {
                return "host mapping \(index) runs past the address space"
            }
            guard mapping.address >= previousEnd else { return "host mapping \(index) overlaps the one before it" }
            previousEnd = mapping.address + mapping.length
            guard files[mapping.file] != nil else {
                return "host mapping \(index) maps file \(mapping.file), which does not exist"
            }
            if let problem = Self.problem(
                of: mapping.privateCopied, within: Self.decodedLimit, "copies of host mapping \(index)")
                ?? Self.problem(of: mapping.privateContents, pageSize: page, "contents of host mapping \(index)")
            {
                return problem
            }
        }
        return nil
    }

    static func fits(_ start: UInt64, _ length: UInt64, _ limit: UInt64) -> Bool {
        let (end, overflow) = start.addingReportingOverflow(length)
        return !overflow && end <= limit
    }

    static func problem<Value>(of map: IntervalMap<Value>, within limit: UInt64, _ what: String) -> String? {
        var end: UInt64 = 0
        for run in map.runSequence { end = max(end, run.range.upperBound) }
        return end > limit ? "\(what) end at \(end), past 2^63" : nil
    }

    static func problem(of store: PageStore, pageSize: UInt64, _ what: String) -> String? {
        for (index, data) in store.pages {
            guard UInt64(data.count) == pageSize, index <= decodedLimit / pageSize else {
                return "\(what): page \(index) holds \(data.count) bytes, not one \(pageSize)-byte page"
            }
        }
        return nil
    }
}
