/// bad_msg_notification's error codes (mtproto/service_messages_about_messages).
public enum BadMessageCode {
    public static let messageIDTooLow: Int32 = 16
    public static let messageIDTooHigh: Int32 = 17
    public static let messageIDLowBits: Int32 = 18
    public static let containerIDReused: Int32 = 19
    public static let messageTooOld: Int32 = 20
    public static let seqNoTooLow: Int32 = 32
    public static let seqNoTooHigh: Int32 = 33
    public static let seqNoEvenExpected: Int32 = 34
    public static let seqNoOddExpected: Int32 = 35
    public static let badServerSalt: Int32 = 48
    public static let invalidContainer: Int32 = 64

    public static func explanation(_ code: Int32) -> String {
        switch code {
        case 16: "msg_id too low: the client clock is behind"
        case 17: "msg_id too high: the client clock is ahead"
        case 18: "msg_id's two low bits are wrong"
        case 19: "container msg_id reused"
        case 20: "message too old to tell whether it was received"
        case 32: "seq_no too low"
        case 33: "seq_no too high"
        case 34: "even seq_no expected (not content-related)"
        case 35: "odd seq_no expected (content-related)"
        case 48: "wrong server salt"
        case 64: "invalid container"
        default: "unknown code"
        }
    }
}
