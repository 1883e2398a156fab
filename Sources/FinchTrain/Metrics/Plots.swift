import Foundation
import FinchTensor

/// SVG charts a person can open in any browser: training curves and the confusion matrix.
public enum Plots {
    public struct Series {
        public let name: String
        public let values: [Double]
        public let color: String
        /// Positions on the x axis (epochs, fractional for steps inside an epoch); nil: 1…n.
        public let x: [Double]?
        /// A thin line without markers, for dense per-step series.
        public let thin: Bool
        public init(name: String, values: [Double], color: String, x: [Double]? = nil, thin: Bool = false) {
            ensure(x == nil || x!.count == values.count, "Plots.Series: \(x?.count ?? 0) positions for \(values.count) values")
            self.name = name
            self.values = values
            self.color = color
            self.x = x
            self.thin = thin
        }
        var positions: [Double] { x ?? values.indices.map { Double($0 + 1) } }
    }

    /// Axis ticks at "nice numbers" (1, 2 or 5 × 10ᵏ apart, Heckbert's rule) covering lo…hi; the
    /// axis runs from the first tick to the last.
    public struct Ticks: Equatable {
        public let values: [Double]
        public let step: Double
        public var lo: Double { values.first ?? 0 }
        public var hi: Double { values.last ?? 1 }

        public init(lo: Double, hi: Double, count: Int = 5) {
            var (lo, hi) = (lo, hi)
            if !(lo.isFinite && hi.isFinite) { (lo, hi) = (0, 1) }
            if lo == hi { (lo, hi) = lo == 0 ? (0, 1) : (lo - abs(lo) * 0.1, hi + abs(hi) * 0.1) }
            let step = Self.nice((hi - lo) / Double(max(count - 1, 1)), round: true)
            let first = (lo / step).rounded(.down), last = (hi / step).rounded(.up)
            // Multiples of the step, each computed once, so labels carry no accumulated error.
            values = stride(from: first, through: last, by: 1).map { $0 * step }
            self.step = step
        }

        /// 1, 2, 5 or 10 × 10ᵏ near x: the nearest when rounding, else the next above.
        static func nice(_ x: Double, round: Bool) -> Double {
            let exponent = floor(log10(x)), fraction = x / pow(10, exponent)
            let f: Double
            if round { f = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10 }
            else { f = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10 }
            return f * pow(10, exponent)
        }

        /// A label with as many decimals as the step needs ("0.25", "1e-04" for small rates).
        public func label(_ v: Double) -> String {
            if v == 0 { return "0" }
            let magnitude = Swift.max(abs(lo), abs(hi))
            if magnitude > 0 && (magnitude < 1e-2 || magnitude >= 1e6) {
                let digits = Swift.max(0, Int(floor(log10(magnitude))) - Int(floor(log10(step))))
                return String(format: "%.\(digits)e", v)
            }
            let decimals = Swift.max(0, -Int(floor(log10(step))))
            let text = String(format: "%.\(decimals)f", v)
            return text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
        }
    }

    /// Line chart of several series over epochs, with axes, rounded ticks and a legend.
    public static func lineChart(title: String, yLabel: String, series: [Series], xLabel: String = "epoch",
                                 width: Int = 640, height: Int = 380) -> String {
        let left = 64.0, right = 150.0, top = 40.0, bottom = 50.0
        let pw = Double(width) - left - right, ph = Double(height) - top - bottom
        let all = series.flatMap(\.values).filter(\.isFinite)
        let yTicks = Ticks(lo: all.min() ?? 0, hi: all.max() ?? 1)
        let xs = series.flatMap(\.positions).filter(\.isFinite)
        let xMax = Swift.max(xs.max() ?? 1, 1)
        // Whole epochs on the x axis, from the first at 1 (or 0 when steps of epoch 1 are drawn).
        let xMin = (xs.min() ?? 1) < 1 ? 0.0 : 1.0
        let xTicks = Ticks(lo: xMin, hi: Swift.max(xMax, xMin + 1), count: 8)
        let xStep = Swift.max(xTicks.step.rounded(.up), 1)
        let xTickValues = stride(from: xMin, through: xMax + 1e-9, by: xStep).map { $0 }
        let xHi = Swift.max(xTickValues.last ?? xMax, xMax)
        func x(_ v: Double) -> Double { left + (xHi == xMin ? pw / 2 : pw * (v - xMin) / (xHi - xMin)) }
        func y(_ v: Double) -> Double { top + ph * (1 - (v - yTicks.lo) / (yTicks.hi - yTicks.lo)) }
        func num(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = header(width, height)
        svg += "<text x=\"\(width / 2)\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">\(escape(title))</text>\n"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#444\"/>\n"
        for v in yTicks.values {
            svg += "<line x1=\"\(left)\" x2=\"\(left + pw)\" y1=\"\(num(y(v)))\" y2=\"\(num(y(v)))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(num(y(v) + 4))\" text-anchor=\"end\" font-size=\"11\">\(yTicks.label(v))</text>\n"
        }
        for v in xTickValues {
            svg += "<text x=\"\(num(x(v)))\" y=\"\(top + ph + 16)\" text-anchor=\"middle\" font-size=\"11\">\(Int(v))</text>\n"
        }
        svg += "<text x=\"\(left + pw / 2)\" y=\"\(Double(height) - 12)\" text-anchor=\"middle\" font-size=\"12\">\(escape(xLabel))</text>\n"
        svg += "<text x=\"16\" y=\"\(top + ph / 2)\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 16 \(top + ph / 2))\">\(escape(yLabel))</text>\n"
        for (k, s) in series.enumerated() {
            let pts = zip(s.positions, s.values).filter { $0.0.isFinite && $0.1.isFinite }.map { (x($0.0), y($0.1)) }
            if pts.count > 1 {
                svg += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"\(s.thin ? 1 : 2)\"\(s.thin ? " stroke-opacity=\"0.6\"" : "") points=\"\(pts.map { "\(num($0.0)),\(num($0.1))" }.joined(separator: " "))\"/>\n"
            }
            if !s.thin { for p in pts { svg += "<circle cx=\"\(num(p.0))\" cy=\"\(num(p.1))\" r=\"2.5\" fill=\"\(s.color)\"/>" } }
            let ly = top + 14 + Double(k) * 18
            svg += "\n<line x1=\"\(left + pw + 12)\" x2=\"\(left + pw + 32)\" y1=\"\(ly)\" y2=\"\(ly)\" stroke=\"\(s.color)\" stroke-width=\"\(s.thin ? 1 : 2)\"/>"
            svg += "<text x=\"\(left + pw + 36)\" y=\"\(ly + 4)\" font-size=\"12\">\(escape(s.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// At most `limit` points: consecutive values averaged in equal runs, at their mean position
    /// (a long run's per-step losses stay a readable, small file).
    public static func binned(x: [Double], values: [Double], limit: Int = 400) -> (x: [Double], values: [Double]) {
        ensure(x.count == values.count && limit >= 1, "Plots.binned: \(x.count) positions for \(values.count) values, limit \(limit)")
        guard values.count > limit else { return (x, values) }
        var bx: [Double] = [], bv: [Double] = []
        for b in 0..<limit {
            let r = (b * values.count / limit)..<((b + 1) * values.count / limit)
            bx.append(x[r].reduce(0, +) / Double(r.count))
            bv.append(values[r].reduce(0, +) / Double(r.count))
        }
        return (bx, bv)
    }

    /// Heat map of counts with row-normalised shading and the counts written in each cell.
    public static func confusionMatrix(_ m: [[Int]], classes: [String], title: String = "Confusion matrix (rows: true, columns: predicted)") -> String {
        let n = m.count, cell = max(36, min(64, 480 / max(n, 1)))
        let left = 110, top = 70
        let width = left + n * cell + 20, height = top + n * cell + 40
        var svg = header(width, height)
        svg += "<text x=\"\(width / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(escape(title))</text>\n"
        for (j, c) in classes.prefix(n).enumerated() {
            let cx = left + j * cell + cell / 2
            svg += "<text x=\"\(cx)\" y=\"\(top - 8)\" text-anchor=\"start\" font-size=\"11\" transform=\"rotate(-35 \(cx) \(top - 8))\">\(escape(c))</text>\n"
        }
        for i in 0..<n {
            let total = max(m[i].reduce(0, +), 1)
            svg += "<text x=\"\(left - 6)\" y=\"\(top + i * cell + cell / 2 + 4)\" text-anchor=\"end\" font-size=\"11\">\(escape(i < classes.count ? classes[i] : String(i)))</text>\n"
            for j in 0..<n {
                let f = Double(m[i][j]) / Double(total)
                let shade = Int(255 - f * 200)
                let fill = i == j ? "rgb(\(shade),\(min(255, shade + 40)),255)" : "rgb(255,\(shade),\(shade))"
                svg += "<rect x=\"\(left + j * cell)\" y=\"\(top + i * cell)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"\(fill)\" stroke=\"#999\"/>"
                svg += "<text x=\"\(left + j * cell + cell / 2)\" y=\"\(top + i * cell + cell / 2 + 4)\" text-anchor=\"middle\" font-size=\"12\">\(m[i][j])</text>\n"
            }
        }
        return svg + "</svg>\n"
    }

    static func header(_ w: Int, _ h: Int) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
