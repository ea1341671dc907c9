/// A Linux errno value, as the kernel returns it (`-errno` from CKVM's wrappers, negated). The values gmemctl
/// names are below, with one table of their symbols and messages; any other value keeps its number. Spelled
/// out rather than taken from Glibc: the simulator models Linux whatever platform it runs on.
public struct Errno: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let eperm = Errno(rawValue: 1)
    public static let enoent = Errno(rawValue: 2)
    public static let eintr = Errno(rawValue: 4)
    public static let eio = Errno(rawValue: 5)
    public static let ebadf = Errno(rawValue: 9)
    public static let eagain = Errno(rawValue: 11)
    public static let enomem = Errno(rawValue: 12)
    public static let eacces = Errno(rawValue: 13)
    public static let efault = Errno(rawValue: 14)
    public static let ebusy = Errno(rawValue: 16)
    public static let eexist = Errno(rawValue: 17)
    public static let enodev = Errno(rawValue: 19)
    public static let einval = Errno(rawValue: 22)
    public static let emfile = Errno(rawValue: 24)
    public static let enotty = Errno(rawValue: 25)
    public static let efbig = Errno(rawValue: 27)
    public static let enospc = Errno(rawValue: 28)
    public static let espipe = Errno(rawValue: 29)
    public static let enosys = Errno(rawValue: 38)
    public static let eoverflow = Errno(rawValue: 75)
    public static let eopnotsupp = Errno(rawValue: 95)
    public static let ehwpoison = Errno(rawValue: 133)

    /// The one table: symbol and message of every named value.
    private static let table: [Errno: (name: String, message: String)] = [
        .eperm: ("EPERM", "operation not permitted"),
        .enoent: ("ENOENT", "no such file or directory"),
        .eintr: ("EINTR", "interrupted system call"),
        .eio: ("EIO", "input/output error"),
        .ebadf: ("EBADF", "bad file descriptor"),
        .eagain: ("EAGAIN", "resource temporarily unavailable"),
        .enomem: ("ENOMEM", "cannot allocate memory"),
        .eacces: ("EACCES", "permission denied"),
        .efault: ("EFAULT", "bad address"),
        .ebusy: ("EBUSY", "device or resource busy"),
        .eexist: ("EEXIST", "file exists"),
        .enodev: ("ENODEV", "no such device"),
        .einval: ("EINVAL", "invalid argument"),
        .emfile: ("EMFILE", "too many open files"),
        .enotty: ("ENOTTY", "inappropriate ioctl for device"),
        .efbig: ("EFBIG", "file too large"),
        .enospc: ("ENOSPC", "no space left on device"),
        .espipe: ("ESPIPE", "illegal seek"),
        .enosys: ("ENOSYS", "function not implemented"),
        .eoverflow: ("EOVERFLOW", "value too large for defined data type"),
        .eopnotsupp: ("EOPNOTSUPP", "operation not supported"),
        .ehwpoison: ("EHWPOISON", "memory page has hardware error"),
    ]

    /// Every named value, for tests and for parsing names.
    public static var named: [Errno] { table.keys.sorted { $0.rawValue < $1.rawValue } }

    /// `EINVAL`, or `errno 200` for a value without a name.
    public var name: String { Self.table[self]?.name ?? "errno \(rawValue)" }
    public var message: String { Self.table[self]?.message ?? "unknown error" }
    public var description: String { name }

    /// The value of a C call's `-errno` return (`ckvm_*` wrappers return `-errno` on failure).
    public init<Result: SignedInteger>(negatedReturn result: Result) {
        self.init(rawValue: Int32(truncatingIfNeeded: -result))
    }

    /// A symbol (`EINVAL`) or a number (`22`).
    public init?(parsing text: String) {
        if let number = Int32(text) {
            self.init(rawValue: number)
        } else if let match = Self.table.first(where: { $0.value.name == text.uppercased() }) {
            self = match.key
        } else {
            return nil
        }
    }

    /// Encoded as the bare number, as the state file and the agent protocol have always carried it.
    public init(from decoder: Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(Int32.self)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
