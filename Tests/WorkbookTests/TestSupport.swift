import Foundation
import XCTest
@testable import Workbook

/// The package's root folder, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// One scratch folder per test process, so the module cache is warm after the first compile.
let testScratch: String = {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("workbook-tests-\(getpid())").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

/// A checker over the simulator built next to the test bundle (`swift build` makes it).
func makeChecker(substituteSolutions: Bool = false, cache: Bool = false, name: String = UUID().uuidString) throws -> ChapterChecker {
    let compiler = try Compiler(simulator: try SimulatorBuild.locate(), moduleCache: "\(testScratch)/module-cache")
    return ChapterChecker(compiler: compiler,
                          cache: cache ? ResultCache(directory: "\(testScratch)/\(name)/cache") : nil,
                          workDirectory: "\(testScratch)/\(name)/programs", substituteSolutions: substituteSolutions)
}

/// Writes `markdown` as a chapter file and extracts it.
func fixtureChapter(_ markdown: String, name: String = "fixture.md") throws -> Chapter {
    let folder = try temporaryFolder()
    let path = "\(folder)/\(name)"
    try markdown.write(toFile: path, atomically: true, encoding: .utf8)
    return try ChapterLoader.load([path]).first!
}
