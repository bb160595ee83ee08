import Foundation

/// Finds chapter files, reads them and extracts their blocks; with a solutions folder, attaches each
/// exercise's reference solution.
public enum ChapterLoader {
    /// Chapter files named by `paths`: files as given, folders by their `*.md` files (not recursive),
    /// sorted by name so `01-…` comes before `02-…`.
    public static func chapterFiles(_ paths: [String]) throws(ChapterErrors) -> [String] {
        var files: [String] = []
        var errors: [ChapterError] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                errors.append(ChapterError(SourceLocation(file: path, line: 0), "no such file or folder"))
                continue
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                let base = path.hasSuffix("/") ? String(path.dropLast()) : path
                files += names.filter { $0.hasSuffix(".md") }.sorted().map { "\(base)/\($0)" }
            } else {
                files.append(path)
            }
        }
        guard errors.isEmpty else { throw ChapterErrors(errors) }
        return files
    }

    /// Loads each chapter; every error in every file is collected before throwing.
    public static func load(_ files: [String], solutionsFolder: String? = nil) throws(ChapterErrors) -> [Chapter] {
        var chapters: [Chapter] = []
        var errors: [ChapterError] = []
        for file in files {
            do {
                var chapter = try BlockExtractor.chapter(path: file, markdown: try read(file))
                if let solutionsFolder {
                    chapter.solutions = try solutions(for: chapter, in: solutionsFolder)
                }
                chapters.append(chapter)
            } catch {
                errors += error.errors
            }
        }
        guard errors.isEmpty else { throw ChapterErrors(errors) }
        return chapters
    }

    /// The solutions of `chapter`, from `folder/<chapter file name>`; every exercise needs one and
    /// every solution needs its exercise.
    static func solutions(for chapter: Chapter, in folder: String) throws(ChapterErrors) -> [String: Solution] {
        let exercises = chapter.blocks.compactMap { block -> (String, Block)? in
            if case .exercise(let id) = block.role { return (id, block) }
            return nil
        }
        let path = (folder.hasSuffix("/") ? folder : folder + "/") + (chapter.path.split(separator: "/").last.map(String.init) ?? chapter.path)
        guard FileManager.default.fileExists(atPath: path) else {
            if let (id, block) = exercises.first {
                throw ChapterErrors([ChapterError(block.fence, "exercise '\(id)' has no solution: \(path) does not exist")])
            }
            return [:]
        }
        let solutions = try BlockExtractor.solutions(path: path, markdown: try read(path))
        var errors: [ChapterError] = []
        let ids = Set(exercises.map(\.0))
        for (id, block) in exercises where solutions[id] == nil {
            errors.append(ChapterError(block.fence, "exercise '\(id)' has no 'swift solution=\(id)' block in \(path)"))
        }
        for solution in solutions.values.sorted(by: { $0.fence.line < $1.fence.line }) where !ids.contains(solution.id) {
            errors.append(ChapterError(solution.fence, "solution '\(solution.id)' matches no exercise in \(chapter.path)"))
        }
        guard errors.isEmpty else { throw ChapterErrors(errors) }
        return solutions
    }

    private static func read(_ path: String) throws(ChapterErrors) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ChapterErrors([ChapterError(SourceLocation(file: path, line: 0), "cannot read the file")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ChapterErrors([ChapterError(SourceLocation(file: path, line: 0), "the file is not valid UTF-8")])
        }
        return text
    }
}
