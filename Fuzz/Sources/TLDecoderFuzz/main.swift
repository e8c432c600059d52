import FuzzSupport

runFuzzer { bytes in
    if bytes.count > 3, bytes[0] == 0x46, bytes[1] == 0x55, bytes[2] == 0x5a {
        _ = bytes.reduce(0, &+)
    }
}
