import Foundation
import GRDB

/// Typed reads that never trap: GRDB's converting subscripts stop the process on a value of the
/// wrong type, and a damaged file may hold one. A column the row does not have reads as NULL.
extension Row {
    private func value(_ column: String) -> DatabaseValue {
        // Optional: a missing column is nil; GRDB's non-optional subscript stops the process on one.
        let value: DatabaseValue? = self[column]
        return value ?? .null
    }

    package func int64(_ column: String) -> Int64? {
        let value = value(column)
        if case .int64(let x) = value.storage { return x }
        return nil
    }

    package func double(_ column: String) -> Double? {
        let value = value(column)
        switch value.storage {
        case .double(let x): return x
        case .int64(let x): return Double(x)
        default: return nil
        }
    }

    package func string(_ column: String) -> String? {
        let value = value(column)
        if case .string(let x) = value.storage { return x }
        return nil
    }

    package func blob(_ column: String) -> Data? {
        let value = value(column)
        if case .blob(let x) = value.storage { return x }
        return nil
    }

    package func isNull(_ column: String) -> Bool {
        let value = value(column)
        return value.isNull
    }
}
