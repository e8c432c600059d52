#if os(Linux)
import Glibc

/// Gives back the code and read-only data pages that start-up mapped into `tgsm run`.
///
/// Why: almost all of an idle run's resident memory is clean pages of the binary and its
/// libraries (docs/BENCHMARKS.md, "Idle memory of tgsm run"): argument parsing, store recovery,
/// migrations, key loading and the services' start each run once, and the kernel maps 64 KiB
/// around every page they touch. Those pages stay resident for the life of the process although
/// nothing runs them again. `MADV_DONTNEED` on a clean private file mapping unmaps its pages from
/// this process only: they stay in the page cache, and code that runs again faults its page back
/// in from there (a minor fault, no disk read). The steady state's pages come back within its
/// first rounds; the rest is no longer charged to the worker.
///
/// Only mappings of a file that are private, not writable and hold no page of their own
/// (`Anonymous: 0 kB` in smaps) are touched: such a mapping is exactly the file's bytes, so
/// dropping its pages loses nothing. That leaves out the RELRO pages (written by the loader
/// before they were made read-only), data, heap, stacks, shared mappings and the vDSO.
enum StartupPages {
    /// Releases the pages; returns the bytes of the mappings advised (not all were resident).
    @discardableResult
    static func release() -> Int {
        guard let file = fopen("/proc/self/smaps", "r") else { return 0 }
        defer { fclose(file) }
        var candidates: [(start: UInt, end: UInt)] = []
        var current: (start: UInt, end: UInt)?
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            if let mapping = cleanFileMapping(header: text) {
                current = mapping
            } else if text.hasPrefix("Anonymous:"), let mapping = current {
                let kilobytes = text.dropFirst("Anonymous:".count).split(separator: " ").first.flatMap { Int($0) }
                if kilobytes == 0 { candidates.append(mapping) }
                current = nil
            } else if isHeader(text) {
                current = nil
            }
        }
        var advised = 0
        for mapping in candidates where mapping.end > mapping.start {
            guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(address, Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 { advised += Int(mapping.end - mapping.start) }
        }
        return advised
    }

    /// A header line ("start-end perms offset dev inode path") of a private, read-only mapping of
    /// a file: its address range; nil for anything else.
    static func cleanFileMapping(header: String) -> (start: UInt, end: UInt)? {
        let fields = header.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 6, isHeader(header) else { return nil }
        let permissions = Array(fields[1].utf8)
        guard permissions.count == 4, permissions[1] == UInt8(ascii: "-"), permissions[3] == UInt8(ascii: "p"),
              fields[4] != "0", fields[5].hasPrefix("/")
        else { return nil }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16) else { return nil }
        return (start, end)
    }

    /// Whether a smaps line starts a mapping ("start-end perms ...") rather than one of its fields.
    private static func isHeader(_ line: String) -> Bool {
        guard let first = line.split(separator: " ", maxSplits: 1).first else { return false }
        let range = first.split(separator: "-")
        return range.count == 2 && UInt(range[0], radix: 16) != nil && UInt(range[1], radix: 16) != nil
    }
}
#else
enum StartupPages {
    @discardableResult
    static func release() -> Int { 0 }
}
#endif
