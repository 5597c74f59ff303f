// Scalar conversions between Float32 and the two 16-bit float formats GGML stores:
// IEEE 754 binary16 ("F16", 1 sign / 5 exponent / 10 mantissa bits) and bfloat16
// ("BF16", the upper half of a Float32). All three functions are pure bit arithmetic,
// so they give identical results on every host, with or without F16C hardware.

/// Converts IEEE binary16 bits to Float32. Exact for every input (Float32 holds every
/// binary16 value): subnormals become normal Float32 values, ±Inf stays ±Inf, and a NaN
/// keeps its sign, its quiet/signalling bit and its payload (shifted into the top mantissa bits),
/// as numpy does. (ggml's portable conversion and F16C instead set the quiet bit of a
/// signalling NaN; no other input differs.)
@inlinable
public func halfToFloat(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let magnitude = UInt32(bits & 0x7FFF)
    if magnitude >= 0x7C00 { // Inf (mantissa 0) or NaN
        return Float(bitPattern: sign | 0x7F80_0000 | ((magnitude & 0x03FF) << 13))
    }
    if magnitude >= 0x0400 { // normal: rebias exponent 15 -> 127
        return Float(bitPattern: sign | ((magnitude << 13) &+ 0x3800_0000))
    }
    // Zero or subnormal: magnitude * 2^-24, exact in Float32.
    let value = Float(magnitude) * 0x1p-24
    return Float(bitPattern: sign | value.bitPattern)
}

/// Converts bfloat16 bits to Float32 (exact: bfloat16 is the high 16 bits of a Float32).
@inlinable
public func bf16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Converts a Float32 to IEEE binary16 bits, rounding to nearest, ties to even.
/// Values of magnitude ≥ 65520 become ±Inf; tiny values become subnormals or ±0.
/// A NaN becomes a quiet NaN with the same sign and the top 9 payload bits
/// (the behaviour of `vcvtps2ph` and of compiler-rt's `__truncsfhf2`).
@inlinable
public func floatToHalf(_ value: Float) -> UInt16 {
    let x = value.bitPattern
    let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
    let magnitude = x & 0x7FFF_FFFF

    if magnitude >= 0x7F80_0000 { // Inf or NaN
        if magnitude == 0x7F80_0000 { return sign | 0x7C00 }
        return sign | 0x7E00 | UInt16(truncatingIfNeeded: (magnitude >> 13) & 0x01FF)
    }
    if magnitude >= 0x4780_0000 { // ≥ 65536: certainly overflows
        return sign | 0x7C00
    }
    if magnitude < 0x3880_0000 { // below 2^-14: subnormal binary16 or zero
        if magnitude <= 0x3300_0000 { return sign } // ≤ 2^-25 (a tie at 2^-25 goes to even 0)
        let exponent = magnitude >> 23 // 102 ... 112
        let significand = (magnitude & 0x007F_FFFF) | 0x0080_0000
        let shift = 126 - exponent // value / 2^-24 = significand >> shift
        return sign | UInt16(truncatingIfNeeded: roundShiftNearestEven(significand, by: shift))
    }
    // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits.
    // A carry out of the mantissa correctly bumps the exponent, up to 0x7C00 (= Inf).
    let rebiased = (magnitude &- 0x3800_0000)
    return sign | UInt16(truncatingIfNeeded: roundShiftNearestEven(rebiased, by: 13))
}

/// `value >> shift`, rounded to nearest with ties to even (shift in 1...31).
@inlinable @inline(__always)
internal func roundShiftNearestEven(_ value: UInt32, by shift: UInt32) -> UInt32 {
    let truncated = value >> shift
    let remainder = value & ((1 << shift) - 1)
    let half: UInt32 = 1 << (shift - 1)
    if remainder > half || (remainder == half && truncated & 1 == 1) {
        return truncated + 1
    }
    return truncated
}
