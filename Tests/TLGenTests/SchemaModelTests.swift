import Testing
@testable import TLGen

@Suite struct SchemaModelTests {
    private func model(_ text: String, options: GeneratorOptions = GeneratorOptions(root: "T", command: "test")) throws -> SchemaModel {
        let schema = try TLParser(fileName: "test.tl").parse(text)
        return try SchemaModel(schema: schema, fileName: "test.tl", options: options)
    }

    private func schemaError(_ text: String, options: GeneratorOptions = GeneratorOptions(root: "T", command: "test")) -> TLSchemaError? {
        do {
            _ = try model(text, options: options)
            return nil
        } catch let error as TLSchemaError {
            return error
        } catch {
            return nil
        }
    }

    @Test func aCRCMismatchIsAnErrorNamingTheLine() {
        let error = schemaError("""
            pong#347773c5 msg_id:long ping_id:long = Pong;

            ping_wrong#7abe77ed ping_id:long = Pong;
            """)
        #expect(error?.line == 3)
        #expect(error?.description.contains("test.tl:3") == true)
        #expect(error?.description.contains("does not match CRC32") == true)
    }

    @Test func documentedExceptionsMustCarryTheirExactNumber() throws {
        let line = "ipPortSecret#37982646 ipv4:int port:int secret:bytes = IpPort;"
        #expect(schemaError(line) != nil)
        let options = GeneratorOptions(root: "T", idExceptions: ["ipPortSecret": (0x3798_2646, "test")], command: "test")
        #expect(try model(line, options: options).types.count == 1)
        let wrong = GeneratorOptions(root: "T", idExceptions: ["ipPortSecret": (0x1234_5678, "test")], command: "test")
        #expect(schemaError(line, options: wrong) != nil)
        // An exception for a combinator that is not there is stale configuration.
        #expect(schemaError("pong#347773c5 msg_id:long ping_id:long = Pong;", options: options) != nil)
    }

    @Test func objectFieldsMustBeDeclaredHandParsed() throws {
        let text = """
            message#5bb8e511 msg_id:long seqno:int bytes:int body:Object = Message;
            msg_container#73f1f8dc messages:vector<message> = MessageContainer;
            pong#347773c5 msg_id:long ping_id:long = Pong;
            """
        #expect(schemaError(text)?.line == 1)
        let options = GeneratorOptions(root: "T", handParsed: ["message": "test", "msg_container": "test"], command: "test")
        let resolved = try model(text, options: options)
        #expect(resolved.handParsed.map(\.name) == ["message", "msg_container"])
        #expect(resolved.types.map(\.tlName) == ["Pong"])
        // Depending on a hand-parsed combinator without being one is an error too.
        let partial = GeneratorOptions(root: "T", handParsed: ["message": "test"], command: "test")
        #expect(schemaError(text, options: partial)?.line == 2)
    }

    @Test func listedStringFieldsBecomeBytes() throws {
        let line = "msgs_state_info#04deb57d req_msg_id:long info:string = MsgsStateInfo;"
        let options = GeneratorOptions(root: "T", bytesFields: ["msgs_state_info": ["info": "test"]], command: "test")
        let info = try #require(try model(line, options: options).types.first?.constructors.first?.fields.last)
        guard case let .plain(codec) = info.kind else { Issue.record("info should be a plain field"); return }
        #expect(codec == .bytes)
        // Without the option it stays text; a listed field that is missing or not a string is stale.
        if case let .plain(plain) = try #require(try model(line).types.first?.constructors.first?.fields.last).kind {
            #expect(plain == .string)
        }
        #expect(schemaError(line, options: GeneratorOptions(root: "T", bytesFields: ["msgs_state_info": ["nope": "test"]], command: "test")) != nil)
        #expect(schemaError(line, options: GeneratorOptions(root: "T", bytesFields: ["msgs_state_info": ["req_msg_id": "test"]], command: "test")) != nil)
        #expect(schemaError(line, options: GeneratorOptions(root: "T", bytesFields: ["absent": ["info": "test"]], command: "test")) != nil)
    }

    @Test func unknownTypesAndBuiltinsAreRefused() {
        #expect(schemaError("a#6a4ee3ab x:Nope = A;") != nil)
        #expect(schemaError("boolTrue#997275b5 = Bool;") != nil)
    }

    @Test func resolvesNamesAndCodecs() throws {
        let resolved = try model("""
            future_salt#0949d9dc valid_since:int valid_until:int salt:long = FutureSalt;
            future_salts#ae500895 req_msg_id:long now:int salts:vector<future_salt> = FutureSalts;
            ---functions---
            invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X;
            """)
        let salts = try #require(resolved.types.first { $0.tlName == "FutureSalts" })
        #expect(salts.swiftPath == "T.FutureSalts")
        #expect(salts.constructors[0].swiftPath == "T.FutureSalts.FutureSalts")
        #expect(salts.constructors[0].caseName == "futureSalts")
        let saltsField = salts.constructors[0].fields[2]
        #expect(saltsField.swiftName == "salts")
        if case let .plain(codec) = saltsField.kind {
            #expect(codec == .vector(.bareConstructor("T.FutureSalt.FutureSalt"), boxed: false))
        } else {
            Issue.record("salts should be a plain field")
        }
        let wrapper = try #require(resolved.functions.first)
        #expect(wrapper.swiftPath == "T.functions.InvokeWithLayer")
        #expect(wrapper.result == .boxed("X.Result"))
        #expect(wrapper.typeParameters == ["X"])
    }
}
