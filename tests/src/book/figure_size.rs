//! Figures are shown at a size at which their text is legible.
//!
//! The rule. A figure is shown at its natural width, or narrower when that
//! does not fit: `book/theme/candle.css` never scales an image up, and lets a
//! figure grow past the 750 px text column up to `--figure-max-width` where
//! the window has room beside the sidebar (`100vw − sidebar − 4em`). On the
//! window this check assumes, [`DESKTOP_WIDTH`] CSS px with mdbook's
//! [`SIDEBAR_WIDTH`] sidebar open, that room is
//! `min(--figure-max-width, 1440 − 300 − 64)`. So an image shown at
//! `displayed = min(natural, room)` is scaled by `displayed / natural`, and so
//! is its smallest text. That text must come out at least [`MIN_TEXT_PX`] CSS
//! px, half the body text's 16 px: below that, the labels of a plot blur into
//! each other on an ordinary screen.
//!
//! The sizes come from the image files themselves: an SVG's `width` (in px,
//! or pt at 4/3 px each) and the smallest `font-size` of its text, converted
//! from `viewBox` units; a PNG's pixel width from its header, and its smallest
//! text from the SVG drawn beside it with the same name, or else
//! [`ASSUMED_PNG_TEXT_PX`].

use crate::{Problem, Problems};
use std::path::Path;

/// The window the rule assumes: a common desktop width.
pub const DESKTOP_WIDTH: f64 = 1440.0;
/// mdbook's sidebar (`--sidebar-width`).
pub const SIDEBAR_WIDTH: f64 = 300.0;
/// The margins `candle.css` leaves beside a wide figure (4em at 16 px).
pub const FIGURE_MARGINS: f64 = 64.0;
/// mdbook's text column (`--content-max-width`); a figure may always be this wide.
pub const TEXT_COLUMN: f64 = 750.0;
/// The smallest legible text, in CSS px.
pub const MIN_TEXT_PX: f64 = 8.0;
/// The smallest text of a PNG that has no SVG twin: the tick labels that
/// plotters draws in this book's PNG plots are about this size.
pub const ASSUMED_PNG_TEXT_PX: f64 = 10.0;

/// What the check needs to know about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSize {
    /// Natural width in CSS px.
    pub width: f64,
    /// The smallest text at natural size, in CSS px, when the file says.
    pub min_text: Option<f64>,
}

/// A length attribute in CSS px: `640`, `640px`, `1130pt`.
fn length_px(value: &str) -> Option<f64> {
    let value = value.trim();
    if let Some(pt) = value.strip_suffix("pt") {
        return pt.trim().parse::<f64>().ok().map(|v| v * 4.0 / 3.0);
    }
    value
        .strip_suffix("px")
        .unwrap_or(value)
        .trim()
        .parse()
        .ok()
}

/// The first value of attribute `name` in `text` (double quotes).
fn svg_attribute<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let pattern = format!(" {name}=\"");
    let start = text.find(&pattern)? + pattern.len();
    text[start..].split('"').next()
}

/// Reads an SVG's natural width and its smallest text.
pub fn svg_size(text: &str) -> Option<ImageSize> {
    let root = &text[text.find("<svg")?..];
    let root = &root[..root.find('>')?];
    let view_box: Vec<f64> = svg_attribute(root, "viewBox")
        .map(|v| {
            v.split([' ', ','])
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let width = match svg_attribute(root, "width").and_then(length_px) {
        Some(w) => w,
        None => *view_box.get(2)?,
    };
    // One viewBox unit is this many CSS px at natural size.
    let unit = match view_box.get(2) {
        Some(&vb) if vb > 0.0 => width / vb,
        _ => 1.0,
    };
    let mut min_font: Option<f64> = None;
    let mut consider = |v: f64| {
        if v > 0.0 {
            min_font = Some(min_font.map_or(v, |m: f64| m.min(v)));
        }
    };
    for (at, _) in text.match_indices("font-size") {
        let rest = &text[at + "font-size".len()..];
        let value = if let Some(q) = rest.strip_prefix("=\"") {
            q.split('"').next()
        } else if let Some(css) = rest.strip_prefix(':') {
            css.split([';', '"', '}']).next()
        } else {
            None
        };
        if let Some(v) = value.and_then(length_px) {
            consider(v);
        }
    }
    Some(ImageSize {
        width,
        min_text: min_font.map(|f| f * unit),
    })
}

/// Reads a PNG's pixel width from its header (1 px is shown as 1 CSS px).
pub fn png_size(bytes: &[u8]) -> Option<ImageSize> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    Some(ImageSize {
        width: f64::from(width),
        min_text: None,
    })
}

/// The widest a figure is shown on the assumed window, given the
/// stylesheet's `--figure-max-width`.
pub fn figure_room(figure_max_width: f64) -> f64 {
    figure_max_width.clamp(TEXT_COLUMN, DESKTOP_WIDTH - SIDEBAR_WIDTH - FIGURE_MARGINS)
}

/// Reads `--figure-max-width: NNNpx` from a stylesheet.
pub fn figure_max_width(css: &str) -> Option<f64> {
    let at = css.find("--figure-max-width:")? + "--figure-max-width:".len();
    length_px(css[at..].split(';').next()?)
}

/// The size the smallest text of `image` is shown at, in CSS px.
pub fn shown_text_px(image: &ImageSize, room: f64) -> f64 {
    let scale = (room / image.width).min(1.0);
    image.min_text.unwrap_or(ASSUMED_PNG_TEXT_PX) * scale
}

/// Checks one image; `file` names it in the problem.
pub fn check_image(file: &Path, image: &ImageSize, room: f64) -> Problems {
    let mut problems = Problems::default();
    let shown = shown_text_px(image, room);
    if shown < MIN_TEXT_PX {
        problems.push(Problem::new(
            file,
            0,
            format!(
                "{:.0} px wide with {:.1} px text, shown at most {room:.0} px wide: its text is {shown:.1} px, under {MIN_TEXT_PX} px; draw it narrower or with larger text",
                image.width,
                image.min_text.unwrap_or(ASSUMED_PNG_TEXT_PX),
            ),
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_svg_sizes_in_px_and_pt() {
        let plotters = r#"<svg width="1500" height="420" viewBox="0 0 1500 420" xmlns="http://www.w3.org/2000/svg">
<text font-size="9.67741935483871" x="1">a</text><text font-size="12.9">b</text></svg>"#;
        let s = svg_size(plotters).unwrap();
        assert_eq!(s.width, 1500.0);
        assert!((s.min_text.unwrap() - 9.677).abs() < 1e-3);
        let graphviz = r#"<svg width="1130pt" height="101pt" viewBox="0.00 0.00 1130.00 101.00"><text font-size="9.00">x</text></svg>"#;
        let g = svg_size(graphviz).unwrap();
        assert!((g.width - 1506.67).abs() < 0.01);
        assert!((g.min_text.unwrap() - 12.0).abs() < 1e-9, "{g:?}");
        let styled = r#"<svg viewBox="0 0 200 100"><style>text{font-size:7px}</style></svg>"#;
        assert_eq!(
            svg_size(styled),
            Some(ImageSize {
                width: 200.0,
                min_text: Some(7.0)
            })
        );
    }

    #[test]
    fn reads_png_width() {
        let mut header = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        header.extend_from_slice(&1080u32.to_be_bytes());
        header.extend_from_slice(&380u32.to_be_bytes());
        assert_eq!(png_size(&header).unwrap().width, 1080.0);
        assert!(png_size(b"GIF89a").is_none());
    }

    #[test]
    fn a_wide_plot_with_small_text_is_caught_and_a_fitting_one_passes() {
        let room = figure_room(figure_max_width(":root { --figure-max-width: 1100px; }").unwrap());
        assert_eq!(room, 1076.0);
        let wide = ImageSize {
            width: 1500.0,
            min_text: Some(9.68),
        };
        let problems = check_image(Path::new("book/src/figures/09-x.svg"), &wide, room);
        assert!(
            problems.mention("its text is 6.9 px, under 8 px"),
            "{problems}"
        );
        let fits = ImageSize {
            width: 560.0,
            min_text: Some(9.68),
        };
        assert!(check_image(Path::new("a.svg"), &fits, room).is_empty());
        // A narrow stylesheet would shrink it below the limit.
        let tiny_text = ImageSize {
            width: 1000.0,
            min_text: Some(9.0),
        };
        assert!(!check_image(Path::new("a.svg"), &tiny_text, figure_room(750.0)).is_empty());
    }
}
