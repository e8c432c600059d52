import Foundation
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Testing

/// Telling the four formats apart without being told, and the mapping to the client's state.
@Suite struct ForeignSessionTests {
    @Test func stringsAreToldApartByLengthAndPrefix() throws {
        let key = try #require(TestKeys.key(seed: 51))
        let telethon = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: key, address: DCAddress(host: "149.154.167.51", port: 443)))
        let pyrogram = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: key, userID: 9, apiID: 1))
        #expect(try ForeignSession.decodeString(telethon).format == .telethonString)
        #expect(try ForeignSession.decodeString(pyrogram).format == .pyrogramString)
        #expect(throws: SessionImportError.unrecognizedString(length: 10)) { try ForeignSession.decodeString("0123456789") }
        #expect(throws: SessionImportError.unrecognizedString(length: 0)) { try ForeignSession.decodeString(" \n") }
    }

    @Test func filesAreToldApartByTheirColumnsAndTables() {
        func snapshot(_ tables: Set<String>, sessionColumns: [String]) -> SessionFileSnapshot {
            SessionFileSnapshot(tableNames: tables, tables: ["sessions": SessionFileTable(columns: sessionColumns, rows: [])])
        }
        #expect(ForeignSession.fileFormat(of: snapshot(["sessions"], sessionColumns: ["dc_id", "user_id"])) == .pyrogramFile)
        #expect(ForeignSession.fileFormat(of: snapshot(["sessions"], sessionColumns: ["dc_id", "takeout_id"])) == .telethonFile)
        #expect(ForeignSession.fileFormat(of: snapshot(["sessions", "peers"], sessionColumns: ["dc_id"])) == .pyrogramFile)
        #expect(ForeignSession.fileFormat(of: snapshot(["sessions", "entities"], sessionColumns: ["dc_id"])) == .telethonFile)
        #expect(ForeignSession.fileFormat(of: snapshot(["notes"], sessionColumns: [])) == nil)
    }

    /// An imported session becomes the client's state for its home DC; the state exports its home
    /// DC only (the formats hold one key), with the address from the DC table.
    @Test func mapsToAndFromTheClientState() throws {
        let home = try #require(TestKeys.key(seed: 52))
        let other = try #require(TestKeys.key(seed: 53))
        let state = SessionState(
            homeDC: 5, dcs: [5: DCSessionState(authKey: home, serverSalt: 7, isAuthorized: true), 1: DCSessionState(authKey: other)],
            userID: 100, isBot: false
        )
        let session = try PortableSession(state: state)
        #expect(session.dc == 5 && session.authKey == home && session.userID == 100 && session.isBot == false)
        #expect(session.address == DCAddress(host: "91.108.56.130", port: 443))
        #expect(session.sessionState == SessionState(homeDC: 5, dcs: [5: DCSessionState(authKey: home, isAuthorized: true)], userID: 100))

        #expect(throws: SessionExportError.noAuthKey(dc: 3)) { try PortableSession(state: SessionState(homeDC: 3)) }
    }
}
