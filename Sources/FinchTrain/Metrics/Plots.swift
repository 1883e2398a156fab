import Foundation

/// SVG charts a person can open in any browser: training curves and the confusion matrix.
public enum Plots {
    public struct Series {
        public let name: String
        public let values: [Double]
        public let color: String
        public init(name: String, values: [Double], color: String) {
            self.name = name
            self.values = values
            self.color = color
        }
    }

    /// Line chart of several series over epochs 1…n, with axes, ticks and a legend.
    public static func lineChart(title: String, yLabel: String, series: [Series], width: Int = 640, height: Int = 380) -> String {
        let left = 64.0, right = 150.0, top = 40.0, bottom = 50.0
        let pw = Double(width) - left - right, ph = Double(height) - top - bottom
        let all = series.flatMap(\.values).filter(\.isFinite)
        var lo = all.min() ?? 0, hi = all.max() ?? 1
        if lo == hi { lo -= 0.5; hi += 0.5 }
        let pad = (hi - lo) * 0.05
        lo -= pad; hi += pad
        let n = max(series.map(\.values.count).max() ?? 1, 1)
        func x(_ i: Int) -> Double { left + (n == 1 ? pw / 2 : pw * Double(i) / Double(n - 1)) }
        func y(_ v: Double) -> Double { top + ph * (1 - (v - lo) / (hi - lo)) }
        var svg = header(width, height)
        svg += "<text x=\"\(width / 2)\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">\(escape(title))</text>\n"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#444\"/>\n"
        for k in 0...4 {
            let v = lo + (hi - lo) * Double(k) / 4
            svg += "<line x1=\"\(left)\" x2=\"\(left + pw)\" y1=\"\(y(v))\" y2=\"\(y(v))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\" font-size=\"11\">\(String(format: "%.3g", v))</text>\n"
        }
        let step = max(1, n / 10)
        for i in stride(from: 0, to: n, by: step) {
            svg += "<text x=\"\(x(i))\" y=\"\(top + ph + 16)\" text-anchor=\"middle\" font-size=\"11\">\(i + 1)</text>\n"
        }
        svg += "<text x=\"\(left + pw / 2)\" y=\"\(Double(height) - 12)\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n"
        svg += "<text x=\"16\" y=\"\(top + ph / 2)\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 16 \(top + ph / 2))\">\(escape(yLabel))</text>\n"
        for (k, s) in series.enumerated() {
            let pts = s.values.enumerated().filter { $0.element.isFinite }.map { "\(x($0.offset)),\(y($0.element))" }
            if pts.count > 1 {
                svg += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>\n"
            }
            for p in pts { let c = p.split(separator: ","); svg += "<circle cx=\"\(c[0])\" cy=\"\(c[1])\" r=\"2.5\" fill=\"\(s.color)\"/>" }
            let ly = top + 14 + Double(k) * 18
            svg += "\n<line x1=\"\(left + pw + 12)\" x2=\"\(left + pw + 32)\" y1=\"\(ly)\" y2=\"\(ly)\" stroke=\"\(s.color)\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(left + pw + 36)\" y=\"\(ly + 4)\" font-size=\"12\">\(escape(s.name))</text>\n"
        }
        return svg + "</svg>\n"
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
