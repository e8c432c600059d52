import Testing
@testable import MTProtoCrypto

@Suite("SRP 2FA")
struct SRPTests {
    let parameters = SRP.Parameters(
        salt1: hex(TelethonVectors.srpSalt1), salt2: hex(TelethonVectors.srpSalt2),
        g: TelethonVectors.srpG, p: hex(TelethonVectors.srpPrime))

    @Test func passwordHashMatchesTelethon() {
        let x = SRP.passwordHash(password: TelethonVectors.srpPassword, salt1: parameters.salt1, salt2: parameters.salt2)
        #expect(x == hex(TelethonVectors.srpPasswordHash))
    }

    @Test func checkMatchesTelethonsComputeCheck() throws {
        var entropy = ReplayEntropy(hex(TelethonVectors.srpClientRandom))
        let check = try SRP.computeCheck(password: TelethonVectors.srpPassword, parameters: parameters, srpB: hex(TelethonVectors.srpB), entropy: &entropy)
        #expect(check.a == hex(TelethonVectors.srpA))
        #expect(check.m1 == hex(TelethonVectors.srpM1))
        #expect(entropy.remaining == 0)
    }

    @Test func serverSideReproducesBAndAcceptsTelethonsProof() throws {
        let verifier = hex(TelethonVectors.srpVerifier)
        #expect(verifier == (try SRP.verifier(password: TelethonVectors.srpPassword, parameters: parameters)))
        var entropy = ReplayEntropy(hex(TelethonVectors.srpServerSecret))
        let server = try SRPServerSession(parameters: parameters, verifier: verifier, entropy: &entropy)
        #expect(server.b == hex(TelethonVectors.srpB))
        #expect(try server.verify(SRPCheck(a: hex(TelethonVectors.srpA), m1: hex(TelethonVectors.srpM1))))
        var wrong = hex(TelethonVectors.srpM1)
        wrong[0] ^= 1
        #expect(try !server.verify(SRPCheck(a: hex(TelethonVectors.srpA), m1: wrong)))
    }

    @Test func ourClientAndServerAgreeAndWrongPasswordsFail() throws {
        let x = hex(TelethonVectors.srpPasswordHash)
        let verifier = hex(TelethonVectors.srpVerifier)
        var entropy = SeededEntropy(seed: 31)
        let server = try SRPServerSession(parameters: parameters, verifier: verifier, entropy: &entropy)
        let good = try SRP.computeCheck(passwordHash: x, parameters: parameters, srpB: server.b, entropy: &entropy)
        #expect(try server.verify(good))
        var wrongX = x
        wrongX[5] ^= 0x40
        let bad = try SRP.computeCheck(passwordHash: wrongX, parameters: parameters, srpB: server.b, entropy: &entropy)
        #expect(try !server.verify(bad))
    }

    @Test func unsafeParametersAreRejected() throws {
        var entropy = SeededEntropy(seed: 1)
        let x = hex(TelethonVectors.srpPasswordHash)
        let b = hex(TelethonVectors.srpB)
        let badG = SRP.Parameters(salt1: parameters.salt1, salt2: parameters.salt2, g: 2, p: parameters.p)
        #expect(throws: SRPError.unsafeGroup(.generatorNotQuadraticResidue(generator: 2))) {
            _ = try SRP.computeCheck(passwordHash: x, parameters: badG, srpB: b, entropy: &entropy)
        }
        let badP = SRP.Parameters(salt1: parameters.salt1, salt2: parameters.salt2, g: 3, p: Array(parameters.p.dropFirst()))
        #expect(throws: SRPError.unsafeGroup(.primeWrongSize(bits: 2037))) {
            _ = try SRP.verifier(password: "x", parameters: badP)
        }
        #expect(throws: SRPError.serverValueOutOfRange) {
            _ = try SRP.computeCheck(passwordHash: x, parameters: parameters, srpB: [UInt8](repeating: 0, count: 256), entropy: &entropy)
        }
        #expect(throws: SRPError.serverValueOutOfRange) {
            _ = try SRP.computeCheck(passwordHash: x, parameters: parameters, srpB: parameters.p, entropy: &entropy)
        }
        // B = k*v exactly makes g_b = 0: the classic SRP attack value.
        let k = Hashing.sha256(parts: [parameters.p, [UInt8](repeating: 0, count: 255) + [3]])
        let kvModP = BigNumber.modMul(BigNumber(bytes: k), BigNumber(bytes: hex(TelethonVectors.srpVerifier)), BigNumber(bytes: parameters.p))
            .bytes(paddedTo: 256)
        #expect(throws: SRPError.unsafeServerValue) {
            _ = try SRP.computeCheck(passwordHash: x, parameters: parameters, srpB: kvModP, entropy: &entropy)
        }
    }

    @Test func serverRejectsOutOfRangeA() throws {
        var entropy = SeededEntropy(seed: 2)
        let server = try SRPServerSession(parameters: parameters, verifier: hex(TelethonVectors.srpVerifier), entropy: &entropy)
        #expect(throws: SRPError.clientValueOutOfRange) { _ = try server.verify(SRPCheck(a: [0], m1: [])) }
        #expect(throws: SRPError.clientValueOutOfRange) { _ = try server.verify(SRPCheck(a: parameters.p, m1: [])) }
        let badGroup = SRP.Parameters(salt1: [], salt2: [], g: 9, p: parameters.p)
        #expect(throws: SRPError.unsafeGroup(.generatorOutOfRange(9))) {
            _ = try SRPServerSession(parameters: badGroup, verifier: [1], entropy: &entropy)
        }
    }

    @Test func errorsExplainThemselves() {
        let errors: [SRPError] = [.unsafeGroup(.primeNotPrime), .serverValueOutOfRange, .unsafeServerValue, .clientValueOutOfRange]
        #expect(Set(errors.map(\.description)).count == 4)
        #expect(SRPError.unsafeGroup(.primeNotPrime).description.contains("not prime"))
    }
}
