import Testing
@testable import TLGen

@Suite struct TLParserTests {
    private func parse(_ text: String) throws -> ParsedSchema {
        try TLParser(fileName: "test.tl").parse(text)
    }

    @Test func sectionsDecideConstructorOrFunction() throws {
        let schema = try parse("""
            ---types---
            pong#347773c5 msg_id:long ping_id:long = Pong;
            ---functions---
            ping#7abe77ec ping_id:long = Pong;
            ---types---
            http_wait#9299359f max_delay:int wait_after:int max_wait:int = HttpWait;
            """)
        #expect(schema.combinators.map(\.kind) == [.constructor, .function, .constructor])
        #expect(schema.combinators.map(\.line) == [2, 4, 6])
        #expect(schema.constructors.map(\.name) == ["pong", "http_wait"])
    }

    @Test func commentsAreIgnoredIncludingCommentedDeclarations() throws {
        let schema = try parse("""
            // boolFalse#bc799737 = Bool;  // Parsed manually
            /* a block comment
               spanning lines; with a semicolon */
            pong#347773c5 msg_id:long /* inline */ ping_id:long = Pong; // trailing
            //// 0x5bb8e511 = hex(crc32(b"message msg_id:long seqno:int bytes:int body:Object = Message"))
            """)
        #expect(schema.combinators.count == 1)
        #expect(schema.combinators[0].fields.map(\.name) == ["msg_id", "ping_id"])
        #expect(schema.combinators[0].line == 4)
    }

    @Test func aDeclarationMaySpanLines() throws {
        let schema = try parse("pong#347773c5\n  msg_id:long\n  ping_id:long = Pong;")
        #expect(schema.combinators[0].line == 1)
        #expect(schema.combinators[0].fields.count == 2)
    }

    @Test func flagsAndFlags2Conditions() throws {
        let schema = try parse(
            "community#65efe954 flags:# creator:flags.0?true min:flags.12?true flags2:# collapsed:flags2.20?true id:long hash:flags.13?long = Chat;")
        let fields = schema.combinators[0].fields
        #expect(fields[0] == TLField(name: "flags", type: .flags))
        #expect(fields[1] == TLField(name: "creator", type: .conditional(flagsField: "flags", bit: 0, type: .name("true"))))
        #expect(fields[3] == TLField(name: "flags2", type: .flags))
        #expect(fields[4] == TLField(name: "collapsed", type: .conditional(flagsField: "flags2", bit: 20, type: .name("true"))))
        #expect(fields[6] == TLField(name: "hash", type: .conditional(flagsField: "flags", bit: 13, type: .name("long"))))
    }

    @Test func genericsBoxedAndBare() throws {
        let schema = try parse("""
            future_salts#ae500895 req_msg_id:long now:int salts:vector<future_salt> = FutureSalts;
            x#1 a:Vector<Vector<long>> flags:# b:flags.0?Vector<InputPeer> c:%Message = Vector<User>;
            """)
        #expect(schema.combinators[0].fields[2].type == .plain(.generic("vector", [.name("future_salt")])))
        let fields = schema.combinators[1].fields
        #expect(fields[0].type == .plain(.generic("Vector", [.generic("Vector", [.name("long")])])))
        #expect(schema.combinators[1].result == .generic("Vector", [.name("User")]))
        #expect(fields[3].type == .plain(.bare(.name("Message"))))
    }

    @Test func typeParametersAndBang() throws {
        let schema = try parse("---functions---\ninvokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X;")
        let combinator = schema.combinators[0]
        #expect(combinator.typeParameters == ["X"])
        #expect(combinator.fields[1].type == .plain(.bang("X")))
        #expect(combinator.result == .name("X"))
        #expect(combinator.declaredID == 0xda9b_0d0d)
    }

    @Test func namespacesSplit() throws {
        let combinator = try parse("messages.messages#8c718e87 count:int = messages.Messages;").combinators[0]
        #expect(combinator.namespace == "messages")
        #expect(combinator.localName == "messages")
        #expect(combinator.result == .name("messages.Messages"))
    }

    @Test func malformedInputNamesTheLine() {
        #expect(throws: TLSchemaError.self) { try parse("a#1 x:int") }
        do {
            _ = try parse("\n\nbad#zz x:int = X;")
            Issue.record("expected an error")
        } catch let error as TLSchemaError {
            #expect(error.line == 3)
            #expect(error.description.hasPrefix("test.tl:3:"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(throws: TLSchemaError.self) { try parse("a#1 x:flags.0?int = X;") }  // no flags field
        #expect(throws: TLSchemaError.self) { try parse("a#1 flags:# x:flags.32?int = X;") }
        #expect(throws: TLSchemaError.self) { try parse("a#1 Vector int = X;") }
        #expect(throws: TLSchemaError.self) { try parse("a#1 x:Vector<int = X;") }
        #expect(throws: TLSchemaError.self) { try parse("---bogus---") }
    }
}
