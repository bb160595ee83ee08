/// Which of a chapter's shared declarations each block may depend on, so that editing one
/// exercise's function re-runs the blocks that use it, not the whole chapter.
///
/// A block depends on every block whose declarations introduce a name its code mentions, and on
/// what those declarations mention in turn. "Mentions" is lexical — every identifier-like word and
/// operator in the code, strings and comments included — so it can only over-approximate: a real
/// dependency is never missed because a name hides in a string, at worst a block re-runs that did
/// not need to.
enum Dependencies {
    /// For each of `blocks`, the indices of the other blocks among `declaring` whose declarations
    /// it depends on, in ascending order.
    static func of(_ blocks: [Block], declaredBy declaringBlocks: [Block],
                   splits: [Int: ProgramGenerator.SplitCode]) -> [Int: [Int]] {
        let declaring = declaringBlocks.compactMap { block -> (index: Int, names: Set<String>, mentions: Set<String>)? in
            guard let split = splits[block.index], split.hasDeclarations else { return nil }
            return (block.index, Set(split.declaredNames), words(split.declarations))
        }
        var result: [Int: [Int]] = [:]
        for block in blocks where splits[block.index] != nil {
            var mentioned = words(block.code)
            var found: Set<Int> = [block.index]
            var grew = true
            while grew {
                grew = false
                for candidate in declaring where !found.contains(candidate.index)
                    && !candidate.names.isDisjoint(with: mentioned) {
                    found.insert(candidate.index)
                    mentioned.formUnion(candidate.mentions)
                    grew = true
                }
            }
            found.remove(block.index)
            result[block.index] = found.sorted()
        }
        return result
    }

    /// Identifier-like words and runs of operator characters. Works on UTF-8 bytes (any non-ASCII
    /// byte counts as a letter): it runs over every block on every check.
    static func words(_ code: String) -> Set<String> {
        var result: Set<String> = []
        var utf8 = Array(code.utf8)
        utf8.append(0x20)  // a separator flushes the last word
        var start = 0
        var currentIsWord = false
        for (i, byte) in utf8.enumerated() {
            let isWord = byte >= 0x80 || byte == UInt8(ascii: "_") || (0x30...0x39).contains(byte)
                || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            let isOperator = operatorBytes.contains(byte)
            let continues = i > start && (isWord || isOperator) && isWord == currentIsWord
            if !continues {
                if i > start { result.insert(String(decoding: utf8[start..<i], as: UTF8.self)) }
                start = isWord || isOperator ? i : i + 1
                currentIsWord = isWord
            }
        }
        return result
    }

    private static let operatorBytes = Set("/=-+!*%<>&|^~?.".utf8)
}
