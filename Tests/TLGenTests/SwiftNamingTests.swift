import Testing
@testable import TLGen

@Suite struct SwiftNamingTests {
    @Test func fieldsBecomeLowerCamelCase() {
        #expect(SwiftNaming.fieldName("new_nonce_hash1") == "newNonceHash1")
        #expect(SwiftNaming.fieldName("g_a") == "gA")
        #expect(SwiftNaming.fieldName("dh_prime") == "dhPrime")
        #expect(SwiftNaming.fieldName("id") == "id")
        #expect(SwiftNaming.fieldName("self") == "isSelf")
    }

    @Test func constructorsBecomeUpperCamelCase() {
        #expect(SwiftNaming.upperCamel("p_q_inner_data_dc") == "PQInnerDataDc")
        #expect(SwiftNaming.upperCamel("resPQ") == "ResPQ")
        #expect(SwiftNaming.upperCamel("server_DH_params_ok") == "ServerDHParamsOk")
        #expect(SwiftNaming.upperCamel("type") == "Type_")
        #expect(SwiftNaming.lowerCamel("server_DH_params_ok") == "serverDHParamsOk")
    }

    @Test func keywordsAreEscaped() {
        #expect(SwiftNaming.escaped("default") == "`default`")
        #expect(SwiftNaming.escaped("static") == "`static`")
        #expect(SwiftNaming.escaped("peer") == "peer")
    }
}
