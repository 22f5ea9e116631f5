// SVGCanvas.swift
//
// The drawing layer under the plots. `SVGCanvas` collects elements and renders
// one self-contained SVG document: no scripts, links, ids or external fonts, all
// text XML-escaped. `PlotColor`, `ColorScale`, `LineDash` and `MarkerShape` are
// the styling vocabulary; `SVGRenderable` is what every plot conforms to.

import Foundation

/// Something that draws itself as a standalone SVG document.
public protocol SVGRenderable: Sendable {
    /// Width of the document in pixels.
    var width: Double { get }
    /// Height of the document in pixels.
    var height: Double { get }
    /// The whole document: one `<svg>` element, without an XML declaration (so it can be inlined in HTML).
    func renderSVG() -> String
}

extension SVGRenderable {
    /// Writes `renderSVG()` to `url` atomically: a temporary file in the same directory, then a rename.
    public func write(to url: URL) throws {
        try AtomicFile.write(renderSVG(), to: url)
    }
}

/// An sRGB color with components in `0...1`.
public struct PlotColor: Sendable, Hashable {
    public var red: Double
    public var green: Double
    public var blue: Double

    public init(red: Double, green: Double, blue: Double) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// A color from `0xRRGGBB`.
    public init(hex: UInt32) {
        self.init(
            red: Double((hex >> 16) & 0xFF) / 255, green: Double((hex >> 8) & 0xFF) / 255,
            blue: Double(hex & 0xFF) / 255)
    }

    /// `#rrggbb`, as used in SVG attributes.
    public var hexString: String {
        func byte(_ c: Double) -> Int { Int((min(max(c, 0), 1) * 255).rounded()) }
        return "#" + [red, green, blue].map { String(format: "%02x", byte($0)) }.joined()
    }

    /// The color a fraction `t` of the way to `other`.
    public func mixed(with other: PlotColor, _ t: Double) -> PlotColor {
        PlotColor(
            red: red + (other.red - red) * t, green: green + (other.green - green) * t,
            blue: blue + (other.blue - blue) * t)
    }

    /// Approximate perceived brightness in `0...1` (picks black or white text on a fill).
    var luminance: Double { 0.299 * red + 0.587 * green + 0.114 * blue }

    public static let black = PlotColor(hex: 0x000000)
    public static let white = PlotColor(hex: 0xFFFFFF)
    public static let gray = PlotColor(hex: 0x7F7F7F)

    /// Eight distinguishable series colors (matplotlib's tab10 without gray and olive).
    public static let palette: [PlotColor] = [
        0x1F77B4, 0xFF7F0E, 0x2CA02C, 0xD62728, 0x9467BD, 0x8C564B, 0xE377C2, 0x17BECF,
    ].map { PlotColor(hex: $0) }
}

/// A continuous color map: `anchors` evenly spaced over `0...1`, linearly interpolated.
public struct ColorScale: Sendable, Hashable {
    public var anchors: [PlotColor]
    /// Whether the scale has a neutral middle; heatmaps then default to a range symmetric about 0.
    public var isDiverging: Bool

    public init(anchors: [PlotColor], isDiverging: Bool = false) {
        precondition(!anchors.isEmpty, "a color scale needs at least one anchor")
        self.anchors = anchors
        self.isDiverging = isDiverging
    }

    /// The color at `t` (clamped to `0...1`; NaN gives the first anchor).
    public func color(at t: Double) -> PlotColor {
        guard anchors.count > 1, !t.isNaN else { return anchors[0] }
        let position = min(max(t, 0), 1) * Double(anchors.count - 1)
        let i = min(Int(position), anchors.count - 2)
        return anchors[i].mixed(with: anchors[i + 1], position - Double(i))
    }

    /// Sequential dark purple → teal → yellow, sampled from matplotlib's viridis.
    public static let viridis = ColorScale(
        anchors: [
            0x440154, 0x472D7B, 0x3B528B, 0x2C728E, 0x21918C, 0x28AE80, 0x5EC962, 0xADDC30, 0xFDE725,
        ].map { PlotColor(hex: $0) })
    /// Diverging blue → white → red (ColorBrewer RdBu, reversed).
    public static let diverging = ColorScale(
        anchors: [0x2166AC, 0x67A9CF, 0xD1E5F0, 0xF7F7F7, 0xFDDBC7, 0xEF8A62, 0xB2182B].map { PlotColor(hex: $0) },
        isDiverging: true)
    /// Sequential white → black.
    public static let grays = ColorScale(anchors: [.white, .black])
}

/// How a line is dashed.
public enum LineDash: Sendable, Hashable {
    case solid, dashed, dotted, dashDot
    /// An SVG `stroke-dasharray`: alternating dash and gap lengths in pixels.
    case custom([Double])

    var dashArray: String? {
        switch self {
        case .solid: return nil
        case .dashed: return "6 4"
        case .dotted: return "1.5 3"
        case .dashDot: return "7 3 1.5 3"
        case .custom(let lengths): return lengths.map(svgNumber).joined(separator: " ")
        }
    }
}

/// The symbol drawn at each point of a scatter series.
public enum MarkerShape: Sendable, Hashable {
    case circle, square, triangle, diamond, cross
}

/// `value` for an SVG attribute: at most two decimals, clamped to ±1e6 so far-off points stay finite.
func svgNumber(_ value: Double) -> String {
    let v = value.isNaN ? 0 : (min(max(value, -1e6), 1e6) * 100).rounded() / 100
    return v == v.rounded() ? String(Int(v)) : String(v)
}

/// `text` escaped for XML content or a quoted attribute; characters XML 1.0 forbids are dropped.
func escapeXML(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
        default:
            if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF { continue }
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}

/// Rough width of `text` in pixels at `size` (no font metrics; ~0.6 em per character).
func textWidth(_ text: String, size: Double) -> Double {
    Double(text.count) * size * 0.6
}

/// An SVG document under construction: typed helpers append elements in paint order.
struct SVGCanvas {
    let width: Double
    let height: Double
    private var body = ""

    /// A canvas with a white background; `title` becomes the document's accessible `<title>`.
    init(width: Double, height: Double, title: String) {
        self.width = width
        self.height = height
        if !title.isEmpty { element("title", [], text: title) }
        rect(x: 0, y: 0, width: width, height: height, fill: .white)
    }

    /// Appends `<name attributes…>` with `text` content, or self-closed when `text` is nil.
    mutating func element(_ name: String, _ attributes: [(String, String?)], text: String? = nil) {
        body += "<" + name
        for case (let key, let value?) in attributes { body += " \(key)=\"\(escapeXML(value))\"" }
        body += text.map { ">" + escapeXML($0) + "</\(name)>\n" } ?? "/>\n"
    }

    /// Appends `document` (another canvas's rendering) as a nested viewport at `(x, y)`.
    mutating func embed(_ document: String, x: Double, y: Double) {
        guard document.hasPrefix("<svg ") else { return }
        body += "<svg x=\"\(svgNumber(x))\" y=\"\(svgNumber(y))\" " + document.dropFirst(5)
    }

    /// Draws what `content` adds inside a clipping viewport whose origin is `(x, y)`.
    mutating func clipped(x: Double, y: Double, width: Double, height: Double, _ content: (inout SVGCanvas) -> Void) {
        body +=
            "<svg x=\"\(svgNumber(x))\" y=\"\(svgNumber(y))\" width=\"\(svgNumber(width))\""
            + " height=\"\(svgNumber(height))\" overflow=\"hidden\">\n"
        content(&self)
        body += "</svg>\n"
    }

    mutating func rect(
        x: Double, y: Double, width: Double, height: Double, fill: PlotColor?, stroke: PlotColor? = nil,
        opacity: Double? = nil, cssClass: String? = nil
    ) {
        element(
            "rect",
            [
                ("class", cssClass), ("x", svgNumber(x)), ("y", svgNumber(y)), ("width", svgNumber(max(width, 0))),
                ("height", svgNumber(max(height, 0))), ("fill", fill?.hexString ?? "none"),
                ("stroke", stroke?.hexString), ("fill-opacity", opacity.map(svgNumber)),
            ])
    }

    mutating func line(
        _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, color: PlotColor, width: Double = 1,
        dash: LineDash = .solid, cssClass: String? = nil
    ) {
        element(
            "line",
            [
                ("class", cssClass), ("x1", svgNumber(x1)), ("y1", svgNumber(y1)), ("x2", svgNumber(x2)),
                ("y2", svgNumber(y2)), ("stroke", color.hexString), ("stroke-width", svgNumber(width)),
                ("stroke-dasharray", dash.dashArray),
            ])
    }

    mutating func polyline(
        _ points: [(x: Double, y: Double)], color: PlotColor, width: Double, dash: LineDash = .solid,
        opacity: Double? = nil, cssClass: String? = nil
    ) {
        element(
            "polyline",
            [
                ("class", cssClass), ("points", pointList(points)), ("fill", "none"), ("stroke", color.hexString),
                ("stroke-width", svgNumber(width)), ("stroke-dasharray", dash.dashArray),
                ("stroke-opacity", opacity.map(svgNumber)), ("stroke-linejoin", "round"), ("stroke-linecap", "round"),
            ])
    }

    mutating func polygon(_ points: [(x: Double, y: Double)], fill: PlotColor, opacity: Double, cssClass: String? = nil)
    {
        element(
            "polygon",
            [
                ("class", cssClass), ("points", pointList(points)), ("fill", fill.hexString),
                ("fill-opacity", svgNumber(opacity)), ("stroke", "none"),
            ])
    }

    /// Text centered vertically on `y`; `anchor` is `start`, `middle` or `end`; `rotation` in degrees about `(x, y)`.
    mutating func text(
        _ string: String, x: Double, y: Double, size: Double = 12, anchor: String = "middle",
        color: PlotColor = PlotColor(hex: 0x222222), bold: Bool = false, rotation: Double? = nil,
        halo: Bool = false, cssClass: String? = nil
    ) {
        element(
            "text",
            [
                ("class", cssClass), ("x", svgNumber(x)), ("y", svgNumber(y)), ("dy", "0.35em"),
                ("font-size", svgNumber(size)), ("text-anchor", anchor), ("fill", color.hexString),
                ("font-weight", bold ? "bold" : nil),
                ("transform", rotation.map { "rotate(\(svgNumber($0)) \(svgNumber(x)) \(svgNumber(y)))" }),
                ("stroke", halo ? "#ffffff" : nil), ("stroke-width", halo ? "3" : nil),
                ("paint-order", halo ? "stroke" : nil),
            ], text: string)
    }

    /// A marker of `shape` centered on `(x, y)`, `size` pixels across.
    mutating func marker(
        _ shape: MarkerShape, x: Double, y: Double, size: Double, color: PlotColor, cssClass: String = "marker"
    ) {
        let r = size / 2
        let fill = color.hexString
        switch shape {
        case .circle:
            element(
                "circle",
                [("class", cssClass), ("cx", svgNumber(x)), ("cy", svgNumber(y)), ("r", svgNumber(r)), ("fill", fill)])
        case .square:
            element(
                "rect",
                [
                    ("class", cssClass), ("x", svgNumber(x - r)), ("y", svgNumber(y - r)), ("width", svgNumber(size)),
                    ("height", svgNumber(size)), ("fill", fill),
                ])
        case .triangle, .diamond:
            let corners: [(x: Double, y: Double)] =
                shape == .triangle
                ? [(x, y - r * 1.15), (x + r * 1.1, y + r * 0.8), (x - r * 1.1, y + r * 0.8)]
                : [(x, y - r * 1.2), (x + r, y), (x, y + r * 1.2), (x - r, y)]
            element("polygon", [("class", cssClass), ("points", pointList(corners)), ("fill", fill)])
        case .cross:
            let path =
                "M\(svgNumber(x - r)) \(svgNumber(y - r))L\(svgNumber(x + r)) \(svgNumber(y + r))"
                + "M\(svgNumber(x - r)) \(svgNumber(y + r))L\(svgNumber(x + r)) \(svgNumber(y - r))"
            element("path", [("class", cssClass), ("d", path), ("stroke", fill), ("stroke-width", "1.5")])
        }
    }

    /// The finished document.
    func render() -> String {
        let w = svgNumber(width)
        let h = svgNumber(height)
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\""
            + " font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n" + body + "</svg>\n"
    }

    private func pointList(_ points: [(x: Double, y: Double)]) -> String {
        points.map { svgNumber($0.x) + "," + svgNumber($0.y) }.joined(separator: " ")
    }
}
