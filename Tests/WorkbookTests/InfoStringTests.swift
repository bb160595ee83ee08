import XCTest
@testable import Workbook

final class InfoStringTests: XCTestCase {
    private func parse(_ text: String) throws -> InfoString { try InfoString.parse(text).get() }

    func testLanguageAlone() throws {
        let info = try parse("swift")
        XCTAssertEqual(info.language, "swift")
        XCTAssertEqual(info.attributes, [])
    }

    func testAttributesSeparatedBySpacesAndCommas() throws {
        let info = try parse("swift  bugcheck=0xD1,verifier=off , no_run")
        XCTAssertEqual(info.attributes.map(\.name), ["bugcheck", "verifier", "no_run"])
        XCTAssertEqual(info.attributes.map(\.value), ["0xD1", "off", nil])
    }

    func testQuotedValueWithSpacesAndEscapes() throws {
        let info = try parse(#"swift compile_fail="cannot convert \"KIRQL\" to \\ pointer""#)
        XCTAssertEqual(info.attributes.first?.value, #"cannot convert "KIRQL" to \ pointer"#)
    }

    func testEmptyInfoString() throws {
        XCTAssertEqual(try parse("").language, "")
        XCTAssertEqual(try parse("   ").language, "")
    }

    func testMalformedInfoStrings() {
        let cases = [
            #"swift compile_fail="open"#: "unterminated",
            "swift timeout=": "has no value",
            "swift =3": "without an attribute name",
            "swift a=b=c": "quote the value",
            "exercise=x": "must start with a language",
        ]
        for (text, expected) in cases {
            guard case .failure(let error) = InfoString.parse(text) else {
                XCTFail("'\(text)' parsed, but it is malformed")
                continue
            }
            XCTAssertTrue(error.message.contains(expected), "'\(text)': \(error.message)")
        }
    }
}
