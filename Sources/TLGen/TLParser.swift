/// A schema line the parser or the checker refused, with the line it is on.
public struct TLSchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { "\(file):\(line): \(message)" }
}

/// Parses TL schema text: `//` and `/* */` comments, `---types---` / `---functions---` sections,
/// `name#id {X:Type} field:type ... = Result;` declarations (one may span several lines).
public struct TLParser {
    public var fileName: String

    public init(fileName: String = "schema.tl") {
        self.fileName = fileName
    }

    public func parse(_ text: String) throws -> ParsedSchema {
        var combinators: [TLDeclaration] = []
        var kind = TLDeclaration.Kind.constructor
        var pending = ""
        var pendingLine = 0
        var inBlockComment = false

        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            var line = Substring(rawLine)
            var code = ""
            // Strip comments; a block comment may run across lines.
            while !line.isEmpty {
                if inBlockComment {
                    guard let end = line.firstRange(of: "*/") else { line = ""; break }
                    line = line[end.upperBound...]
                    inBlockComment = false
                } else if let start = line.firstRange(of: "/*"), line.firstRange(of: "//").map({ $0.lowerBound > start.lowerBound }) ?? true {
                    code += line[..<start.lowerBound]
                    line = line[start.upperBound...]
                    inBlockComment = true
                } else if let start = line.firstRange(of: "//") {
                    code += line[..<start.lowerBound]
                    line = ""
                } else {
                    code += line
                    line = ""
                }
            }
            let trimmed = code.trimmingWhitespace()
            if trimmed.isEmpty { continue }
            if trimmed == "---functions---" || trimmed == "---types---" {
                guard pending.trimmingWhitespace().isEmpty else {
                    throw TLSchemaError(file: fileName, line: pendingLine, message: "declaration is not terminated by ';' before \(trimmed)")
                }
                kind = trimmed == "---functions---" ? .function : .constructor
                continue
            }
            if trimmed.hasPrefix("---") {
                throw TLSchemaError(file: fileName, line: lineNumber, message: "unknown section divider '\(trimmed)'")
            }
            var rest = Substring(trimmed)
            while !rest.isEmpty {
                if pending.trimmingWhitespace().isEmpty { pendingLine = lineNumber }
                if let semicolon = rest.firstIndex(of: ";") {
                    pending += " " + rest[..<semicolon]
                    combinators.append(try parseDeclaration(pending.trimmingWhitespace(), kind: kind, line: pendingLine))
                    pending = ""
                    rest = Substring(rest[rest.index(after: semicolon)...].trimmingWhitespace())
                } else {
                    pending += " " + rest
                    rest = ""
                }
            }
        }
        guard pending.trimmingWhitespace().isEmpty else {
            throw TLSchemaError(file: fileName, line: pendingLine, message: "declaration is not terminated by ';'")
        }
        return ParsedSchema(combinators: combinators)
    }

    func parseDeclaration(_ text: String, kind: TLDeclaration.Kind, line: Int) throws -> TLDeclaration {
        func fail(_ message: String) -> TLSchemaError {
            TLSchemaError(file: fileName, line: line, message: "\(message) in '\(text)'")
        }
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        guard let head = tokens.first else { throw fail("empty declaration") }
        guard let equals = tokens.firstIndex(of: "=") else { throw fail("missing '= ResultType'") }
        guard equals + 1 < tokens.count else { throw fail("missing result type after '='") }

        var name = head
        var declaredID: UInt32?
        if let hash = head.firstIndex(of: "#") {
            name = String(head[..<hash])
            let hex = head[head.index(after: hash)...]
            guard !hex.isEmpty, hex.count <= 8, let value = UInt32(hex, radix: 16) else {
                throw fail("constructor number '\(hex)' is not 1 to 8 hex digits")
            }
            declaredID = value
        }
        guard Self.isIdentifier(name, allowDots: true) else { throw fail("'\(name)' is not a combinator name") }

        var typeParameters: [String] = []
        var fields: [TLField] = []
        for token in tokens[1..<equals] {
            if token.hasPrefix("{") {
                guard token.hasSuffix("}"), let colon = token.firstIndex(of: ":") else { throw fail("malformed type parameter '\(token)'") }
                let parameter = String(token[token.index(after: token.startIndex)..<colon])
                let sort = token[token.index(after: colon)..<token.index(before: token.endIndex)]
                guard sort == "Type", Self.isIdentifier(parameter, allowDots: false) else {
                    throw fail("only '{X:Type}' type parameters are supported, not '\(token)'")
                }
                typeParameters.append(parameter)
                continue
            }
            guard let colon = token.firstIndex(of: ":") else {
                throw fail("field '\(token)' has no name (anonymous fields are not supported)")
            }
            let fieldName = String(token[..<colon])
            let typeText = String(token[token.index(after: colon)...])
            guard Self.isIdentifier(fieldName, allowDots: false) else { throw fail("'\(fieldName)' is not a field name") }
            if typeText == "#" {
                fields.append(TLField(name: fieldName, type: .flags))
            } else if let question = typeText.firstIndex(of: "?") {
                let condition = typeText[..<question]
                let parts = condition.split(separator: ".", omittingEmptySubsequences: false)
                guard parts.count == 2, let bit = Int(parts[1]), (0..<32).contains(bit) else {
                    throw fail("condition '\(condition)' is not 'flags.N' with N in 0...31")
                }
                let flagsField = String(parts[0])
                guard fields.contains(TLField(name: flagsField, type: .flags)) else {
                    throw fail("condition '\(condition)' refers to '\(flagsField)', which is not an earlier '#' field")
                }
                let type = try parseType(String(typeText[typeText.index(after: question)...]), fail: fail)
                fields.append(TLField(name: fieldName, type: .conditional(flagsField: flagsField, bit: bit, type: type)))
            } else {
                fields.append(TLField(name: fieldName, type: .plain(try parseType(typeText, fail: fail))))
            }
        }
        let resultText = tokens[(equals + 1)...].joined(separator: " ")
        let result = try parseType(resultText, fail: fail)
        return TLDeclaration(name: name, declaredID: declaredID, typeParameters: typeParameters, fields: fields, result: result, kind: kind, line: line)
    }

    func parseType(_ text: String, fail: (String) -> TLSchemaError) throws -> TLTypeExpression {
        var characters = Substring(text)
        let type = try parseTypeExpression(&characters, fail: fail)
        guard characters.isEmpty else { throw fail("unexpected '\(characters)' after type '\(type)'") }
        return type
    }

    private func parseTypeExpression(_ text: inout Substring, fail: (String) -> TLSchemaError) throws -> TLTypeExpression {
        if text.first == "!" {
            text = text.dropFirst()
            let name = readName(&text)
            guard Self.isIdentifier(name, allowDots: false) else { throw fail("'!' must be followed by a type variable") }
            return .bang(name)
        }
        if text.first == "%" {
            text = text.dropFirst()
            return .bare(try parseTypeExpression(&text, fail: fail))
        }
        let name = readName(&text)
        guard Self.isIdentifier(name, allowDots: true) else { throw fail("expected a type name at '\(text)'") }
        guard text.first == "<" else { return .name(name) }
        text = text.dropFirst()
        var arguments: [TLTypeExpression] = []
        while true {
            arguments.append(try parseTypeExpression(&text, fail: fail))
            guard let next = text.first else { throw fail("unterminated '<' in type '\(name)'") }
            text = text.dropFirst()
            if next == ">" { break }
            guard next == "," else { throw fail("unexpected '\(next)' in the arguments of '\(name)'") }
        }
        return .generic(name, arguments)
    }

    private func readName(_ text: inout Substring) -> String {
        let end = text.firstIndex(where: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == ".") }) ?? text.endIndex
        let name = String(text[..<end])
        text = text[end...]
        return name
    }

    static func isIdentifier(_ text: String, allowDots: Bool) -> Bool {
        let parts = allowDots ? text.split(separator: Character("."), omittingEmptySubsequences: false).map(String.init) : [text]
        return !parts.isEmpty && parts.allSatisfy { part in
            guard let first = part.first, first.isASCII, first.isLetter else { return false }
            return part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        }
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
