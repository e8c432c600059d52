/// Constructor numbers of the TL built-ins that no generated type carries: the runtime reads and
/// writes them itself (api.tl lists them only as comments, "parsed manually").
public enum TLBuiltinID {
    /// `boolTrue#997275b5 = Bool;`
    public static let boolTrue: UInt32 = 0x9972_75b5
    /// `boolFalse#bc799737 = Bool;`
    public static let boolFalse: UInt32 = 0xbc79_9737
    /// `vector#1cb5c415 {t:Type} # [ t ] = Vector t;`
    public static let vector: UInt32 = 0x1cb5_c415
    /// `gzip_packed#3072cfa1 packed_data:string = Object;`: may stand in for any boxed object.
    public static let gzipPacked: UInt32 = 0x3072_cfa1
}
