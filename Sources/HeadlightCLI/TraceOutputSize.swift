import Inference

extension TracePlan {
    /// Bytes the captures of this plan occupy before compression: for each capture its element
    /// count (hooks x layers x heads x queries x keys or features, `CaptureLayout.shape`) times
    /// 2 (float16) or 4 bytes, plus 4 bytes per int32 index of top-k captures. Saturates at
    /// Int.max instead of overflowing. HDF5 metadata and the token tables are not counted.
    func estimatedBytes(float16: Bool) -> Int {
        var total = 0
        for c in captures {
            var count = 1
            for d in c.shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                if o { return Int.max }
                count = p
            }
            let perElement = (float16 ? 2 : 4) + (c.form == .topk ? 4 : 0)
            let (bytes, o1) = count.multipliedReportingOverflow(by: perElement)
            let (sum, o2) = total.addingReportingOverflow(bytes)
            if o1 || o2 { return Int.max }
            total = sum
        }
        return total
    }
}
