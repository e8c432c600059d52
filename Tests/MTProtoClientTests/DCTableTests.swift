import TLSchema
import Testing
import MTProtoNIO
@testable import MTProtoClient

@Suite struct DCTableTests {
    @Test func configReplacesListedDCsAndSkipsCDNAndMediaForAPICalls() {
        var table = DCTable([1: [DCAddress(host: "10.0.0.1", port: 443)], 9: [DCAddress(host: "127.0.0.9", port: 9)]])
        table.update(with: [
            .dcOption(Api.DcOption.DcOption(id: 1, ipAddress: "127.0.0.1", port: 4001)),
            .dcOption(Api.DcOption.DcOption(mediaOnly: true, id: 1, ipAddress: "127.0.0.2", port: 4002)),
            .dcOption(Api.DcOption.DcOption(ipv6: true, id: 1, ipAddress: "::1", port: 4003)),
            .dcOption(Api.DcOption.DcOption(cdn: true, id: 2, ipAddress: "127.0.0.3", port: 4004)),
            .dcOption(Api.DcOption.DcOption(id: 3, ipAddress: "127.0.0.4", port: 0)),
        ])
        #expect(table.address(for: 1) == DCAddress(host: "127.0.0.1", port: 4001))
        #expect(table.address(for: 1, media: true) == DCAddress(host: "127.0.0.2", port: 4002, isMediaOnly: true))
        #expect(table.address(for: 1, preferIPv6: true) == DCAddress(host: "::1", port: 4003, isIPv6: true))
        #expect(table.address(for: 2) == nil)
        #expect(table.address(for: 3) == nil)
        #expect(table.address(for: 9) == DCAddress(host: "127.0.0.9", port: 9))
    }

    @Test func productionTableKnowsFiveDCs() {
        #expect(DCTable.production.dcIDs == [1, 2, 3, 4, 5])
    }
}
