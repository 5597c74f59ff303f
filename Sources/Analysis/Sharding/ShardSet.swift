import Foundation
import TraceStore

/// A record's place in a sweep's plan: its plan item (`ShardInfo.trials`) and, for commands
/// with several records per item, which one (e.g. the condition of an `ablate` trial).
public struct ShardRowKey: Hashable, Sendable, CustomStringConvertible {
    public var item: Int
    public var unit: Int
    /// What the unit is called in messages ("condition"); nil: one record per item.
    public var unitName: String?

    public init(item: Int, unit: Int = 0, unitName: String? = nil) {
        self.item = item
        self.unit = unit
        self.unitName = unitName
    }

    public static func == (a: ShardRowKey, b: ShardRowKey) -> Bool { a.item == b.item && a.unit == b.unit }
    public func hash(into h: inout Hasher) {
        h.combine(item)
        h.combine(unit)
    }
    public var description: String { unitName.map { "\(item) (\($0) \(unit))" } ?? "\(item)" }
}

/// One shard run file opened for merging.
public struct ShardSource {
    /// The path given on the command line.
    public let path: String
    /// The file opened: `path`, or `path.partial` for a shard that did not finish.
    public let openedPath: String
    public let file: H5File
    public let info: ShardInfo
    /// `complete == 1` (the shard finished).
    public let complete: Bool
}

/// The shard files of one plan, checked against each other: same command, model sha256, plan
/// hash, shard count and plan order (else `ShardError.foreign` naming the file and key), each
/// shard at most once (`duplicateShard`), all N shards present unless `allowIncomplete`
/// (`missingShards`), every file finished unless `allowIncomplete` (`incomplete`).
public final class ShardSet {
    /// Ordered by shard index.
    public let shards: [ShardSource]
    public let count: Int
    /// The plan's trials in single-run execution order (`ShardInfo.planOrder`).
    public let planOrder: [Int]
    public let command: String
    /// Shard indices not given (only with `allowIncomplete`).
    public let missingShards: [Int]

    /// Root attributes every shard of a plan shares (the resume identity; `kv_cache` absent in
    /// files written before `--kv`, which compare equal to each other).
    public static let identityKeys = [
        RunFile.Attr.command, RunFile.Attr.modelSHA256, "plan_sha256", RunFile.Attr.kvCache
    ]

    private init(shards: [ShardSource], count: Int, planOrder: [Int], command: String, missingShards: [Int]) {
        self.shards = shards
        self.count = count
        self.planOrder = planOrder
        self.command = command
        self.missingShards = missingShards
    }

    deinit { close() }

    public func close() {
        for s in shards { try? s.file.close() }
    }

    public static func open(_ paths: [String], allowIncomplete: Bool) throws -> ShardSet {
        guard !paths.isEmpty else { throw ShardError.noShards }
        var sources: [ShardSource] = []
        var ok = false
        defer { if !ok { for s in sources { try? s.file.close() } } }
        for p in paths {
            var opened = p
            if !FileManager.default.fileExists(atPath: p) {
                let partial = RunFileWriter.temporaryPath(for: p, resumable: true)
                guard FileManager.default.fileExists(atPath: partial) else {
                    throw TraceStoreError.notFound(file: p, object: "/")
                }
                opened = partial
            }
            let f = try RunFile.open(opened, allowIncomplete: true)
            guard let info = try ShardInfo.read(from: f) else {
                try? f.close()
                throw ShardError.notAShard(file: p)
            }
            let complete = try f.attributeIfPresent(RunFile.Attr.complete)?.intValue == 1
            sources.append(ShardSource(path: p, openedPath: opened, file: f, info: info, complete: complete))
        }
        let ref = sources[0]
        for s in sources.dropFirst() {
            for k in identityKeys {
                let want = try ref.file.attributeIfPresent(k), have = try s.file.attributeIfPresent(k)
                if have != want {
                    throw ShardError.foreign(
                        file: s.path, key: k, have: have.map { "\($0)" } ?? "(none)",
                        want: want.map { "\($0)" } ?? "(none)", reference: ref.path)
                }
            }
            if s.info.spec.count != ref.info.spec.count {
                throw ShardError.foreign(
                    file: s.path, key: "shard_count", have: "\(s.info.spec.count)", want: "\(ref.info.spec.count)",
                    reference: ref.path)
            }
            if s.info.planOrder != ref.info.planOrder {
                throw ShardError.foreign(
                    file: s.path, key: "plan_order", have: "another trial order (--no-share-prefix?)",
                    want: "the shared-prefix order of the first shard", reference: ref.path)
            }
        }
        var byIndex: [Int: [ShardSource]] = [:]
        for s in sources { byIndex[s.info.spec.index, default: []].append(s) }
        for (k, list) in byIndex.sorted(by: { $0.key < $1.key }) where list.count > 1 {
            throw ShardError.duplicateShard(shard: list[0].info.spec.description, files: list.map(\.path))
        }
        let n = ref.info.spec.count
        let missing = (0..<n).filter { byIndex[$0] == nil }
        let order = ref.info.planOrder
        if !missing.isEmpty && !allowIncomplete {
            let have = Set(sources.flatMap(\.info.trials))
            throw ShardError.missingShards(
                shards: missing, count: n, trials: order.filter { !have.contains($0) }.sorted())
        }
        if !allowIncomplete, let s = sources.first(where: { !$0.complete }) {
            throw ShardError.incomplete(file: s.path, planned: s.info.trials.count)
        }
        let command = try ref.file.attributeIfPresent(RunFile.Attr.command)?.stringValue ?? ""
        ok = true
        return ShardSet(
            shards: sources.sorted { $0.info.spec.index < $1.info.spec.index }, count: n, planOrder: order,
            command: command, missingShards: missing)
    }

    /// Checks the trial indices each shard recorded (`recorded[i]` for `shards[i]`, one record
    /// per trial): inside its shard, in no other shard. Returns the records' global order
    /// (indices into `(shard, row)`) following `planOrder`, and the plan's trials nobody recorded.
    public func mergeOrder(recorded: [[Int]]) throws -> (order: [(shard: Int, row: Int)], missing: [Int]) {
        let r = try mergeRows(
            recorded: recorded.map { $0.map { ShardRowKey(item: $0) } },
            expected: planOrder.map { ShardRowKey(item: $0) })
        return (r.order, r.missing.map(\.item).sorted())
    }

    /// The general form of `mergeOrder` for commands with several records per plan item (e.g.
    /// `ablate`: one per trial and condition): `recorded[i]` are the keys of `shards[i]`'s rows,
    /// `expected` every key of the plan in the order a single run writes them. Each key's item
    /// must be one of its shard's items and no key may be recorded twice (else
    /// `ShardError.outsideShard` / `duplicateTrial`). Returns the rows in `expected` order and the
    /// expected keys nobody recorded.
    public func mergeRows(
        recorded: [[ShardRowKey]], expected: [ShardRowKey]
    ) throws -> (order: [(shard: Int, row: Int)], missing: [ShardRowKey]) {
        precondition(recorded.count == shards.count)
        var owner: [ShardRowKey: (shard: Int, row: Int)] = [:]
        for (si, keys) in recorded.enumerated() {
            let allowed = Set(shards[si].info.trials)
            let outside = keys.map(\.item).filter { !allowed.contains($0) }
            if !outside.isEmpty {
                throw ShardError.outsideShard(file: shards[si].path, trials: Array(Set(outside)).sorted())
            }
            for (row, k) in keys.enumerated() {
                if let o = owner[k] {
                    throw ShardError.duplicateTrial(
                        trial: k.description,
                        files: o.shard == si ? [shards[si].path] : [shards[o.shard].path, shards[si].path])
                }
                owner[k] = (si, row)
            }
        }
        let order = expected.compactMap { owner[$0] }
        let missing = expected.filter { owner[$0] == nil }
        return (order, missing)
    }

    /// Root attributes for the merged file: the first shard's, without the shard attributes,
    /// the writer's own (format, created, complete, finished) and `sweep_seconds`; its
    /// command line without `--shard K/N` / `--mpi`.
    public func mergedRootAttributes() throws -> [(String, H5AttributeValue)] {
        let skip = Set(
            ShardInfo.Attr.all + [
                RunFile.Attr.format, RunFile.Attr.formatVersion, RunFile.Attr.created, RunFile.Attr.complete,
                RunFile.Attr.finished, "sweep_seconds"
            ])
        var out: [(String, H5AttributeValue)] = []
        for (k, v) in try shards[0].file.attributes().sorted(by: { $0.key < $1.key }) where !skip.contains(k) {
            if k == RunFile.Attr.commandLine, let argv = v.stringsValue {
                out.append((k, .strings(Self.withoutShardArguments(argv))))
            } else {
                out.append((k, v))
            }
        }
        return out
    }

    /// `argv` without `--shard K/N`, `--shard=K/N` and `--mpi` (the single run's command line).
    public static func withoutShardArguments(_ argv: [String]) -> [String] {
        var out: [String] = []
        var skipNext = false
        for a in argv {
            if skipNext {
                skipNext = false
                continue
            }
            if a == "--shard" {
                skipNext = true
                continue
            }
            if a.hasPrefix("--shard=") || a == "--mpi" { continue }
            out.append(a)
        }
        return out
    }

    /// Provenance attributes of a merged file: shard files, hosts, shard specs, their wall times.
    public func writeProvenance(into file: H5File) throws {
        try file.setAttribute("merged_shard_files", shards.map(\.path))
        try file.setAttribute("merged_shard_hosts", shards.map(\.info.host))
        try file.setAttribute("merged_shards", shards.map(\.info.spec.description))
        try file.setAttribute("merged_shard_count", count)
        let secs = try shards.map { try $0.file.attributeIfPresent("sweep_seconds")?.doubleValue ?? 0 }
        try file.setAttribute("merged_shard_seconds", secs)
        // Wall time of the sharded run if the shards ran side by side.
        try file.setAttribute("sweep_seconds", secs.max() ?? 0)
        try file.setAttribute("merged", RunFile.timestamp())
        if !missingShards.isEmpty { try file.setAttribute("merged_missing_shards", missingShards) }
    }
}

extension ShardSet {
    /// Group `name` of every shard (in `shards` order) and the first shard's attributes of it,
    /// checked: each shard has the group (else `ShardError.unsupported`) with the first shard's
    /// attributes (else `ShardError.foreign` naming the file and `/name@key`) — every attribute
    /// but those in `ignoring` (timing; also left out of the result), or only `checked`.
    public func groups(
        _ name: String, ignoring: Set<String> = [], checked: [String]? = nil
    ) throws -> (groups: [H5Group], attributes: [String: H5AttributeValue]) {
        var groups: [H5Group] = []
        var ref: [String: H5AttributeValue] = [:]
        for (i, s) in shards.enumerated() {
            guard try s.file.kind(of: name) == .group else {
                throw ShardError.unsupported(file: s.path, command: "(no /\(name) group)")
            }
            let g = try s.file.group(name)
            let attrs = try g.attributes().filter { !ignoring.contains($0.key) }
            groups.append(g)
            if i == 0 {
                ref = attrs
                continue
            }
            let keys = checked ?? Set(attrs.keys).union(ref.keys).sorted()
            if let k = keys.first(where: { attrs[$0] != ref[$0] }) {
                throw ShardError.foreign(
                    file: s.path, key: "/\(name)@\(k)", have: attrs[k].map { "\($0)" } ?? "(none)",
                    want: ref[k].map { "\($0)" } ?? "(none)", reference: shards[0].path)
            }
        }
        return (groups, ref)
    }
}
