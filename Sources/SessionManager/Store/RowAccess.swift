import Foundation
import GRDB

/// Typed reads that never trap: GRDB's converting subscripts stop the process on a value of the
/// wrong type, and a damaged file may hold one.
extension Row {
    func int64(_ column: String) -> Int64? {
        let value: DatabaseValue = self[column]
        if case .int64(let x) = value.storage { return x }
        return nil
    }

    func double(_ column: String) -> Double? {
        let value: DatabaseValue = self[column]
        switch value.storage {
        case .double(let x): return x
        case .int64(let x): return Double(x)
        default: return nil
        }
    }

    func string(_ column: String) -> String? {
        let value: DatabaseValue = self[column]
        if case .string(let x) = value.storage { return x }
        return nil
    }

    func blob(_ column: String) -> Data? {
        let value: DatabaseValue = self[column]
        if case .blob(let x) = value.storage { return x }
        return nil
    }

    func isNull(_ column: String) -> Bool {
        let value: DatabaseValue = self[column]
        return value.isNull
    }
}
