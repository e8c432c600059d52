import Crypto
import Foundation

/// The one way a phone number becomes a storage key (send-code deadlines): HMAC-SHA256 of its ASCII
/// digits under a secret of the store that keeps the deadline. A plain digest of a phone number is
/// reversed by trying every number (there are only ~10^11); keyed by a per-store secret, a copied
/// table or log line reveals nothing without that store's secret. The digits alone are hashed so
/// "+1 555 0001" and "15550001" guard the same phone.
public enum PhoneKey {
    public static func digest(_ phoneNumber: String, secret: SymmetricKey) -> String {
        let digits = phoneNumber.unicodeScalars.filter { $0.isASCII && $0.properties.numericType == .decimal }
        let mac = HMAC<SHA256>.authenticationCode(for: Array(String(String.UnicodeScalarView(digits)).utf8), using: secret)
        return mac.map { String(format: "%02x", $0) }.joined()
    }
}
