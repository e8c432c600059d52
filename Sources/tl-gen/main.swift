import Foundation
import TLGen

// tl-gen <api|mtproto> <schema.tl> <output-directory>
// Writes the generated Swift files into the output directory and removes any other .swift
// file there (the directory belongs to the generator).

let usage = "usage: tl-gen <api|mtproto> <schema.tl> <output-directory>"
let arguments = CommandLine.arguments.dropFirst()
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data((usage + "\n").utf8))
    exit(2)
}
let preset = arguments[arguments.startIndex]
let schemaPath = arguments[arguments.startIndex + 1]
let outputPath = arguments[arguments.startIndex + 2]
// The header names the canonical invocation (not this one's paths, so `scripts/generate --check`
// can regenerate into a temporary folder and compare byte for byte).
func command(_ preset: String, _ schema: String, _ output: String) -> String {
    "scripts/generate (swift run tl-gen \(preset) \(schema) \(output))"
}

let options: GeneratorOptions
switch preset {
case "api": options = .api(command: command("api", "Schema/api.tl", "Sources/TLSchema/Generated"))
case "mtproto": options = .mtproto(command: command("mtproto", "Schema/mtproto.tl", "Sources/MTProtoSchema/Generated"))
default:
    FileHandle.standardError.write(Data("tl-gen: unknown preset '\(preset)'\n\(usage)\n".utf8))
    exit(2)
}

do {
    let text = try String(contentsOfFile: schemaPath, encoding: .utf8)
    let files = try Generator.generate(schemaText: text, fileName: schemaPath, options: options)
    let manager = FileManager.default
    try manager.createDirectory(atPath: outputPath, withIntermediateDirectories: true)
    for existing in try manager.contentsOfDirectory(atPath: outputPath) where existing.hasSuffix(".swift") && files[existing] == nil {
        try manager.removeItem(atPath: outputPath + "/" + existing)
    }
    for (name, contents) in files.sorted(by: { $0.key < $1.key }) {
        let path = outputPath + "/" + name
        if let current = try? String(contentsOfFile: path, encoding: .utf8), current == contents { continue }
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
    }
    print("tl-gen: \(schemaPath) → \(outputPath) (\(files.count) files)")
} catch {
    FileHandle.standardError.write(Data("tl-gen: \(error)\n".utf8))
    exit(1)
}
