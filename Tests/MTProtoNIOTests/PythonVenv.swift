import Foundation

/// The pinned Python venv the Telethon peer tests run (`scripts/setup-python` makes it).
/// Without it a plain `swift test` skips those tests and says how to get them; `scripts/test`
/// exports TGSM_REQUIRE_VENV=1, so there a missing venv fails them instead of hiding them.
/// TGSM_VENV points at another venv directory (how the skip itself is tested).
enum PythonVenv {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var directory: URL {
        if let path = ProcessInfo.processInfo.environment["TGSM_VENV"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return packageRoot.appendingPathComponent(".build/venv")
    }

    /// The venv's interpreter, nil when it is missing.
    static var python: URL? {
        let url = directory.appendingPathComponent("bin/python")
        return FileManager.default.isExecutableFile(atPath: url.path) ? url : nil
    }

    static var isRequired: Bool { ProcessInfo.processInfo.environment["TGSM_REQUIRE_VENV"] == "1" }

    /// Run when the venv is there, or when it must be (then the test fails on `missing`).
    static var shouldRun: Bool { python != nil || isRequired }

    static var missing: String {
        "no Python venv at \(directory.path): run scripts/setup-python (it installs the pinned Telethon peer)"
    }
}
