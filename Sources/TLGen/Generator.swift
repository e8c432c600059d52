/// The whole pipeline: parse, check every number and reference, emit Swift.
public enum Generator {
    /// Returns file name → contents for the module generated from `schemaText`.
    public static func generate(schemaText: String, fileName: String, options: GeneratorOptions) throws -> [String: String] {
        let schema = try TLParser(fileName: fileName).parse(schemaText)
        let model = try SchemaModel(schema: schema, fileName: fileName, options: options, layer: layer(in: schemaText))
        return SwiftEmitter(model: model, sourceName: fileName).files()
    }

    /// The number in a `// LAYER N` comment, the convention of Telegram's published schemas.
    public static func layer(in schemaText: String) -> Int? {
        var found: Int?
        for line in schemaText.split(separator: "\n") where line.hasPrefix("// LAYER ") {
            found = Int(line.dropFirst("// LAYER ".count).trimmingWhitespace())
        }
        return found
    }
}
