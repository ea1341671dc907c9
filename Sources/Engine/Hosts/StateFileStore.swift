import GmemCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A state file held for one read-modify-write: an exclusive `flock` on `PATH.lock` from `open` until the
/// store is released, so concurrent commands on one state file run one after the other and none loses the
/// others' guests. Reads refuse symlinks; writes go to a fresh temporary (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode
/// 0600) in the same directory, then fsync, rename over the file and fsync the directory, so the file is
/// always either the old or the new state, and nothing planted at a fixed name is ever written through.
public final class StateFileStore {
    public let path: String
    let directory: String
    let baseName: String
    private var lockDescriptor: Int32

    /// Largest state file read (a simulator's state is KiBs to a few MiB; this stops a hostile file early).
    public static let maxBytes = 256 << 20
    /// How long `open` waits for another command holding the lock.
    public static let lockTimeoutSeconds = 120

    /// Opens (creating its directory 0700 if needed) and locks the state file at `path`; cleans temporaries
    /// left by a command that was killed while writing.
    public init(path: String) throws(HostError) {
        self.path = path
        let cut = path.lastIndex(of: "/")
        directory = cut.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        baseName = cut.map { String(path[path.index(after: $0)...]) } ?? path
        guard !baseName.isEmpty, baseName != ".", baseName != ".." else {
            throw HostError("state path \(path) does not name a file")
        }
        try Self.prepareDirectory(directory)
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == ELOOP {
                throw HostError("refusing the state lock \(lockPath): it is a symbolic link; remove it")
            }
            throw HostError("cannot open the state lock \(lockPath): \(Self.describe(code))")
        }
        lockDescriptor = fd
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid() else {
            close(fd)
            throw HostError("refusing the state lock \(lockPath): not a regular file owned by you")
        }
        try lock(lockPath)
        removeLeftoverTemporaries()
    }

    deinit { release() }

    /// Drops the lock (also done on deinit and, by the kernel, on exit).
    public func release() {
        guard lockDescriptor >= 0 else { return }
        close(lockDescriptor)
        lockDescriptor = -1
    }

    /// The file's bytes, or nil when there is no state file yet.
    public func load() throws(HostError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { return nil }
            if code == ELOOP {
                throw HostError(
                    "refusing the state file \(path): it is a symbolic link; remove it or use another --state")
            }
            throw HostError("cannot read the state file \(path): \(Self.describe(code))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw HostError("cannot read the state file \(path): \(Self.describe(errno))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw HostError("refusing the state file \(path): not a regular file")
        }
        guard info.st_uid == geteuid() else {
            throw HostError(
                "refusing the state file \(path): it belongs to uid \(info.st_uid), not to you (uid \(geteuid()))")
        }
        guard Int(info.st_size) <= Self.maxBytes else {
            throw HostError(
                "refusing the state file \(path): \(info.st_size) bytes is more than the \(Self.maxBytes >> 20) MiB a state file may hold"
            )
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return read(fd, base + done, buffer.count - done)
            }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw HostError("cannot read the state file \(path): \(Self.describe(errno))") }
            if count == 0 { break }
            done += count
        }
        return Array(bytes[..<done])
    }

    /// Replaces the state file with `bytes` atomically (see the type's comment).
    public func save(_ bytes: [UInt8]) throws(HostError) {
        var info = stat()
        if lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK {
            throw HostError(
                "refusing to write the state file \(path): it is a symbolic link; remove it or use another --state")
        }
        var temporary = ""
        var fd: Int32 = -1
        // A random name each time: nobody can plant the temporary in advance, and O_EXCL refuses what exists.
        for _ in 0..<16 {
            temporary = "\(path).tmp.\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw HostError("cannot create a temporary state file next to \(path): \(Self.describe(errno))")
        }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return write(fd, base + written, buffer.count - written)
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let code = errno
                close(fd)
                unlink(temporary)
                throw HostError("cannot write the state file \(temporary): \(Self.describe(code))")
            }
            written += count
        }
        guard fsync(fd) == 0 else {
            let code = errno
            close(fd)
            unlink(temporary)
            throw HostError("cannot sync the state file \(temporary): \(Self.describe(code))")
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw HostError("cannot replace the state file \(path): \(Self.describe(code))")
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    // MARK: - Helpers

    /// Waits for the exclusive lock, up to `lockTimeoutSeconds` (an agent serving this state file holds it
    /// for as long as it runs).
    private func lock(_ lockPath: String) throws(HostError) {
        if flock(lockDescriptor, LOCK_EX | LOCK_NB) == 0 { return }
        var clock = timespec()
        clock_gettime(CLOCK_MONOTONIC, &clock)
        let deadline = clock.tv_sec + Self.lockTimeoutSeconds
        while true {
            if flock(lockDescriptor, LOCK_EX | LOCK_NB) == 0 { return }
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                release()
                throw HostError("cannot lock the state file \(path): \(Self.describe(code))")
            }
            clock_gettime(CLOCK_MONOTONIC, &clock)
            if clock.tv_sec >= deadline {
                release()
                throw HostError(
                    "the state file \(path) stayed locked for \(Self.lockTimeoutSeconds) s by another gmemctl "
                        + "(a running command, or an agent started with this --state); stop it, or use another --state")
            }
            var pause = timespec(tv_sec: 0, tv_nsec: 5_000_000)
            nanosleep(&pause, nil)
        }
    }

    /// Creates a missing state directory 0700 (parents too), and refuses one that another user could
    /// change: it must be a directory owned by you or root, and not writable by others unless sticky.
    static func prepareDirectory(_ directory: String) throws(HostError) {
        var info = stat()
        if stat(directory, &info) != 0 {
            guard errno == ENOENT else {
                throw HostError("cannot use the state directory \(directory): \(describe(errno))")
            }
            var prefix = directory.hasPrefix("/") ? "" : "."
            for component in directory.split(separator: "/") {
                prefix += "/" + component
                if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                    throw HostError("cannot create the state directory \(prefix): \(describe(errno))")
                }
            }
            guard stat(directory, &info) == 0 else {
                throw HostError("cannot use the state directory \(directory): \(describe(errno))")
            }
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw HostError("the state directory \(directory) is not a directory")
        }
        guard info.st_uid == geteuid() || info.st_uid == 0 else {
            throw HostError(
                "refusing the state directory \(directory): it belongs to uid \(info.st_uid), not to you (uid \(geteuid())) or root"
            )
        }
        let othersWrite = info.st_mode & (S_IWGRP | S_IWOTH) != 0
        guard !othersWrite || info.st_mode & S_ISVTX != 0 else {
            throw HostError(
                "refusing the state directory \(directory): other users can write it and it is not sticky; use a directory of your own"
            )
        }
    }

    /// Unlinks `NAME.tmp.*` next to the state file: with the lock held, any such file is from a command
    /// that died while writing.
    private func removeLeftoverTemporaries() {
        guard let handle = opendir(directory) else { return }
        defer { closedir(handle) }
        let prefix = baseName + ".tmp."
        var leftovers: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(prefix) { leftovers.append(name) }
        }
        for name in leftovers { unlink(directory + "/" + name) }
    }

    static func describe(_ code: Int32) -> String { String(cString: strerror(code)) + " (errno \(code))" }
}
