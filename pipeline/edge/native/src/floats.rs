//! Float text, two ways: as orjson 3.13 writes a float and as Python's `repr` does.
//!
//! Both print the shortest digits that read back to the same double (closest to the exact
//! value on a tie); they differ in layout only: orjson (the `zmij` layout) writes plain
//! decimals for decimal exponents -5..=15 and `1e-6`, `1e+16` beyond; `repr` writes plain
//! decimals for exponents -4..=15 and `1e-05`, `1e+16` beyond (exponent of at least two
//! digits, always signed). Both add `.0` to an integral plain decimal.

/// `orjson.dumps(f)` for a finite `f`.
pub fn orjson(f: f64) -> String {
    zmij::Buffer::new().format_finite(f).to_owned()
}

/// (negative, significant digits without leading/trailing zeros, decimal point position
/// `decpt`: the value is 0.d1d2... x 10^decpt), read off zmij's shortest output.
fn shortest(f: f64) -> (bool, String, i32) {
    let mut buf = zmij::Buffer::new();
    let text = buf.format_finite(f);
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let int_len = mantissa.find('.').unwrap_or(mantissa.len()) as i32;
    let all: String = mantissa.chars().filter(|c| *c != '.').collect();
    let leading = all.bytes().take_while(|b| *b == b'0').count();
    let digits = all[leading..].trim_end_matches('0').to_owned();
    (negative, digits, int_len - leading as i32 + exp)
}

/// `repr(f)` (= `float.__repr__`, what `json.dumps` writes) for a finite `f`.
pub fn python_repr(f: f64) -> String {
    let (negative, digits, decpt) = shortest(f);
    let mut out = String::with_capacity(24);
    if negative {
        out.push('-');
    }
    if digits.is_empty() {
        out.push_str("0.0");
        return out;
    }
    let n = digits.len() as i32;
    if decpt <= -4 || decpt > 16 {
        // CPython format_float_short, mode 'r': exponent notation
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", e.abs()));
    } else if decpt <= 0 {
        out.push_str("0.");
        for _ in 0..-decpt {
            out.push('0');
        }
        out.push_str(&digits);
    } else if decpt >= n {
        out.push_str(&digits);
        for _ in 0..decpt - n {
            out.push('0');
        }
        out.push_str(".0");
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        for (f, o, p) in [
            (1.0, "1.0", "1.0"),
            (1e16, "1e+16", "1e+16"),
            (1e15, "1000000000000000.0", "1000000000000000.0"),
            (1e-5, "0.00001", "1e-05"),
            (1e-4, "0.0001", "0.0001"),
            (1e-7, "1e-7", "1e-07"),
            (2.5e-5, "0.000025", "2.5e-05"),
            (-0.0, "-0.0", "-0.0"),
            (
                1.2345678901234568e17,
                "1.2345678901234568e+17",
                "1.2345678901234568e+17",
            ),
            (5e-324, "5e-324", "5e-324"),
            (12345.678, "12345.678", "12345.678"),
        ] {
            assert_eq!(orjson(f), o);
            assert_eq!(python_repr(f), p, "{f}");
        }
    }
}
