import MTProtoClient
import MTProtoCrypto
import Testing

/// The keys a `.production` or `.test` profile trusts are Telegram's published ones: their
/// fingerprints (the low 64 bits of SHA-1 over the TL-serialized key) are the ids Telegram's
/// resPQ offers, so a wrong constant would fail every key exchange with the real servers.
@Suite struct TelegramServersTests {
    @Test func theShippedKeysHaveTelegramsPublishedFingerprints() throws {
        let production = try #require(try TelegramServers.productionKeys().first)
        #expect(production.fingerprint == Int64(bitPattern: 0xD09D_1D85_DE64_FD85))
        #expect(production.bitCount == 2048)
        let test = try #require(try TelegramServers.testKeys().first)
        #expect(test.fingerprint == Int64(bitPattern: 0xB258_98DF_208D_2603))
        #expect(test.bitCount == 2048)
    }

    @Test func theTestDCsAreThreeAddressesOnPort443() {
        let addresses = TelegramServers.testDCs.addresses
        #expect(addresses.keys.sorted() == [1, 2, 3])
        #expect(addresses.values.allSatisfy { $0.count == 1 && $0.allSatisfy { $0.port == 443 } })
    }
}
