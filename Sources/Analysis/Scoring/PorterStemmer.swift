/// The Porter stemmer exactly as NLTK's `nltk.stem.porter.PorterStemmer`
/// implements it (checked against NLTK 3.10.4 by
/// Tests/Fixtures/scoring/make_fixtures.py), in its three modes:
///
/// - `.nltkExtensions` (NLTK's default, and what `rouge_score` uses with
///   `use_stemmer=True`): Martin Porter's later changes plus NLTK's — a pool
///   of irregular forms (skies→sky, dying→die, news→news, innings→inning,
///   proceed/exceed/succeed unchanged, ...), "ies"/"ied" of 4-letter words
///   → "ie", "ied" → "i", y→i only after a consonant that is not the whole
///   stem, "alli"→"al" recursing into step 2, "fulli"→"ful", "logi"→"log"
///   measured on the stem plus "l", and a two-letter vowel-consonant stem
///   counting as *o.
/// - `.martinExtensions`: the version on Martin Porter's site (words of
///   one or two letters are left alone, "bli"→"ble", "logi"→"log").
/// - `.originalAlgorithm`: the 1980 paper ("abli"→"able").
///
/// Words work on Unicode scalars like Python strings; lowercasing uses
/// Swift's `lowercased()`, which equals Python's `str.lower()` for ASCII
/// (rouge_score only ever passes [a-z0-9]+ tokens).
public struct PorterStemmer: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        case nltkExtensions = "NLTK_EXTENSIONS"
        case martinExtensions = "MARTIN_EXTENSIONS"
        case originalAlgorithm = "ORIGINAL_ALGORITHM"
    }

    public let mode: Mode
    public init(mode: Mode = .nltkExtensions) { self.mode = mode }

    typealias W = [Unicode.Scalar]

    /// NLTK_EXTENSIONS irregular forms: form -> stem.
    static let pool: [String: String] = {
        let irregular: [(String, [String])] = [
            ("sky", ["sky", "skies"]), ("die", ["dying"]), ("lie", ["lying"]), ("tie", ["tying"]),
            ("news", ["news"]), ("inning", ["innings", "inning"]), ("outing", ["outings", "outing"]),
            ("canning", ["cannings", "canning"]), ("howe", ["howe"]), ("proceed", ["proceed"]),
            ("exceed", ["exceed"]), ("succeed", ["succeed"])
        ]
        var p: [String: String] = [:]
        for (k, forms) in irregular { for f in forms { p[f] = k } }
        return p
    }()

    public func stem(_ word: String, toLowercase: Bool = true) -> String {
        let s = toLowercase ? word.lowercased() : word
        if mode == .nltkExtensions, let irregular = Self.pool[s] { return irregular }
        if mode != .originalAlgorithm && word.unicodeScalars.count <= 2 { return s }
        var w = W(s.unicodeScalars)
        w = step1a(w)
        w = step1b(w)
        w = step1c(w)
        w = step2(w)
        w = step3(w)
        w = step4(w)
        w = step5a(w)
        w = step5b(w)
        var out = String.UnicodeScalarView()
        out.append(contentsOf: w)
        return String(out)
    }

    // MARK: Letters and measure

    @inline(__always) static func isVowelLetter(_ c: Unicode.Scalar) -> Bool {
        c == "a" || c == "e" || c == "i" || c == "o" || c == "u"
    }

    /// `_is_consonant`: y is a consonant at the start or after a vowel.
    func isConsonant(_ w: W, _ i: Int) -> Bool {
        if Self.isVowelLetter(w[i]) { return false }
        if w[i] == "y" {
            var negate = false
            var j = i
            while j > 0 && w[j] == "y" {
                negate.toggle()
                j -= 1
            }
            return (!Self.isVowelLetter(w[j])) != negate
        }
        return true
    }

    /// `_consonant_flags`: the same classification in one pass.
    func consonantFlags(_ w: W) -> [Bool] {
        var f: [Bool] = []
        f.reserveCapacity(w.count)
        for (i, c) in w.enumerated() {
            if Self.isVowelLetter(c) {
                f.append(false)
            } else if c == "y" {
                f.append(i == 0 ? true : !f[i - 1])
            } else {
                f.append(true)
            }
        }
        return f
    }

    /// m in [C](VC){m}[V]: the number of vowel->consonant transitions.
    func measure(_ w: W) -> Int {
        let f = consonantFlags(w)
        var m = 0
        if f.count >= 2 { for i in 0..<(f.count - 1) where !f[i] && f[i + 1] { m += 1 } }
        return m
    }

    func hasPositiveMeasure(_ w: W) -> Bool { measure(w) > 0 }
    func containsVowel(_ w: W) -> Bool { consonantFlags(w).contains(false) }

    /// *d: ends with a double consonant.
    func endsDoubleConsonant(_ w: W) -> Bool {
        w.count >= 2 && w[w.count - 1] == w[w.count - 2] && isConsonant(w, w.count - 1)
    }

    /// *o: ends consonant-vowel-consonant, the last not w, x or y
    /// (NLTK also: a two-letter vowel-consonant word).
    func endsCVC(_ w: W) -> Bool {
        let n = w.count
        if n >= 3 && isConsonant(w, n - 3) && !isConsonant(w, n - 2) && isConsonant(w, n - 1)
            && w[n - 1] != "w" && w[n - 1] != "x" && w[n - 1] != "y"
        {
            return true
        }
        return mode == .nltkExtensions && n == 2 && !isConsonant(w, 0) && isConsonant(w, 1)
    }

    // MARK: Rules

    struct Rule {
        var suffix: W // "*d" is the double-consonant pseudo-suffix
        var replacement: W
        var condition: ((W) -> Bool)?
        init(_ suffix: String, _ replacement: String, _ condition: ((W) -> Bool)?) {
            self.suffix = W(suffix.unicodeScalars)
            self.replacement = W(replacement.unicodeScalars)
            self.condition = condition
        }
        init(_ suffix: String, _ replacement: W, _ condition: ((W) -> Bool)?) {
            self.suffix = W(suffix.unicodeScalars)
            self.replacement = replacement
            self.condition = condition
        }
    }

    static let doubleMarker = W("*d".unicodeScalars)

    @inline(__always) static func ends(_ w: W, _ suffix: W) -> Bool {
        suffix.count <= w.count && w[(w.count - suffix.count)...].elementsEqual(suffix)
    }
    @inline(__always) static func ends(_ w: W, _ suffix: String) -> Bool { ends(w, W(suffix.unicodeScalars)) }
    @inline(__always) static func dropLast(_ w: W, _ k: Int) -> W { Array(w[..<(w.count - k)]) }

    /// `_apply_rule_list`: the first rule whose suffix matches decides; if its
    /// condition fails the word comes back unchanged (later rules are not tried).
    func applyRules(_ w: W, _ rules: [Rule]) -> W {
        for r in rules {
            if r.suffix == Self.doubleMarker && endsDoubleConsonant(w) {
                let stem = Self.dropLast(w, 2)
                if r.condition == nil || r.condition!(stem) { return stem + r.replacement }
                return w
            }
            if Self.ends(w, r.suffix) {
                let stem = Self.dropLast(w, r.suffix.count)
                if r.condition == nil || r.condition!(stem) { return stem + r.replacement }
                return w
            }
        }
        return w
    }

    func step1a(_ w: W) -> W {
        if mode == .nltkExtensions && Self.ends(w, "ies") && w.count == 4 {
            return Self.dropLast(w, 3) + W("ie".unicodeScalars)
        }
        return applyRules(
            w, [Rule("sses", "ss", nil), Rule("ies", "i", nil), Rule("ss", "ss", nil), Rule("s", "", nil)])
    }

    func step1b(_ w: W) -> W {
        if mode == .nltkExtensions && Self.ends(w, "ied") {
            return Self.dropLast(w, 3) + W((w.count == 4 ? "ie" : "i").unicodeScalars)
        }
        if Self.ends(w, "eed") {
            let stem = Self.dropLast(w, 3)
            return measure(stem) > 0 ? stem + W("ee".unicodeScalars) : w
        }
        var inter: W? = nil
        for suffix in ["ed", "ing"] where Self.ends(w, suffix) {
            let s = Self.dropLast(w, suffix.unicodeScalars.count)
            if containsVowel(s) {
                inter = s
                break
            }
        }
        guard let stem = inter else { return w }
        let last = stem[stem.count - 1]
        return applyRules(
            stem,
            [
                Rule("at", "ate", nil),
                Rule("bl", "ble", nil),
                Rule("iz", "ize", nil),
                Rule("*d", [last], { _ in last != "l" && last != "s" && last != "z" }),
                Rule("", "e", { s in self.measure(s) == 1 && self.endsCVC(s) })
            ])
    }

    func step1c(_ w: W) -> W {
        let condition: (W) -> Bool =
            mode == .nltkExtensions
            ? { s in s.count > 1 && self.isConsonant(s, s.count - 1) }
            : { s in self.containsVowel(s) }
        return applyRules(w, [Rule("y", "i", condition)])
    }

    func step2(_ w: W) -> W {
        let pos: (W) -> Bool = { self.hasPositiveMeasure($0) }
        if mode == .nltkExtensions && Self.ends(w, "alli") && pos(Self.dropLast(w, 4)) {
            return step2(Self.dropLast(w, 4) + W("al".unicodeScalars))
        }
        var rules = [
            Rule("ational", "ate", pos), Rule("tional", "tion", pos), Rule("enci", "ence", pos),
            Rule("anci", "ance", pos), Rule("izer", "ize", pos),
            mode == .originalAlgorithm ? Rule("abli", "able", pos) : Rule("bli", "ble", pos),
            Rule("alli", "al", pos), Rule("entli", "ent", pos), Rule("eli", "e", pos),
            Rule("ousli", "ous", pos), Rule("ization", "ize", pos), Rule("ation", "ate", pos),
            Rule("ator", "ate", pos), Rule("alism", "al", pos), Rule("iveness", "ive", pos),
            Rule("fulness", "ful", pos), Rule("ousness", "ous", pos), Rule("aliti", "al", pos),
            Rule("iviti", "ive", pos), Rule("biliti", "ble", pos)
        ]
        if mode == .nltkExtensions {
            rules.append(Rule("fulli", "ful", pos))
            let withL = Self.dropLast(w, min(3, w.count)) // word[:-3]: the stem plus "l"
            rules.append(Rule("logi", "log", { _ in self.hasPositiveMeasure(withL) }))
        }
        if mode == .martinExtensions { rules.append(Rule("logi", "log", pos)) }
        return applyRules(w, rules)
    }

    func step3(_ w: W) -> W {
        let pos: (W) -> Bool = { self.hasPositiveMeasure($0) }
        return applyRules(
            w,
            [
                Rule("icate", "ic", pos), Rule("ative", "", pos), Rule("alize", "al", pos),
                Rule("iciti", "ic", pos), Rule("ical", "ic", pos), Rule("ful", "", pos), Rule("ness", "", pos)
            ])
    }

    func step4(_ w: W) -> W {
        let gt1: (W) -> Bool = { self.measure($0) > 1 }
        return applyRules(
            w,
            [
                Rule("al", "", gt1), Rule("ance", "", gt1), Rule("ence", "", gt1), Rule("er", "", gt1),
                Rule("ic", "", gt1), Rule("able", "", gt1), Rule("ible", "", gt1), Rule("ant", "", gt1),
                Rule("ement", "", gt1), Rule("ment", "", gt1), Rule("ent", "", gt1),
                Rule("ion", "", { s in self.measure(s) > 1 && (s.last == "s" || s.last == "t") }),
                Rule("ou", "", gt1), Rule("ism", "", gt1), Rule("ate", "", gt1), Rule("iti", "", gt1),
                Rule("ous", "", gt1), Rule("ive", "", gt1), Rule("ize", "", gt1)
            ])
    }

    func step5a(_ w: W) -> W {
        guard w.last == "e" else { return w }
        let stem = Self.dropLast(w, 1)
        let m = measure(stem)
        if m > 1 { return stem }
        if m == 1 && !endsCVC(stem) { return stem }
        return w
    }

    func step5b(_ w: W) -> W {
        let minusOne = w.isEmpty ? w : Self.dropLast(w, 1)
        return applyRules(w, [Rule("ll", "l", { _ in self.measure(minusOne) > 1 })])
    }
}
