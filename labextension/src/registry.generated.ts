// Written by `make` (cnnwidgets.registry.typescript()) from cnnwidgets/registry.py (the one widget table);
// edit that table, not this file. tests/test_lab.py checks that the two agree.

/** What a tab opens a widget on: an image file, a folder, or nothing (a bundled sample, or no input). */
export type BenchInput = 'image' | 'folder' | 'none';

/** A widget kind the extension opens in a tab. */
export interface IWidgetKind {
  /** the tab's title */
  label: string;
  on: BenchInput;
  /** the bundled sample shown when the tab opens without a file (null: an image kind that needs a file) */
  sample: string | null;
  /** its entry in the file browser's menu of images (and Open With), or null */
  menu: string | null;
  /** whether the launcher and the command palette open it on its sample */
  launcher: boolean;
}

/** Widget kinds (the requests' `widget`), in the order of the menus and launcher cards. */
export const WIDGETS: { readonly [kind: string]: IWidgetKind } = {
  "filter_designer": {
    "label": "Filter designer",
    "on": "image",
    "sample": "astronaut",
    "menu": "Filter designer",
    "launcher": true
  },
  "threshold_segmenter": {
    "label": "Threshold segmenter",
    "on": "image",
    "sample": "coins",
    "menu": "Threshold segmenter",
    "launcher": true
  },
  "layer_visualizer": {
    "label": "Layer visualizer",
    "on": "image",
    "sample": "chelsea",
    "menu": "Layer visualizer (classify)",
    "launcher": true
  },
  "find_similar": {
    "label": "Find similar images",
    "on": "image",
    "sample": null,
    "menu": "Find similar images",
    "launcher": false
  },
  "pipeline": {
    "label": "Pipeline",
    "on": "image",
    "sample": "coins",
    "menu": "Open in pipeline",
    "launcher": true
  },
  "search_folder": {
    "label": "Search images",
    "on": "folder",
    "sample": null,
    "menu": null,
    "launcher": false
  },
  "convolution_playground": {
    "label": "Convolution playground",
    "on": "none",
    "sample": null,
    "menu": null,
    "launcher": true
  },
  "training_dashboard": {
    "label": "Training dashboard",
    "on": "none",
    "sample": null,
    "menu": null,
    "launcher": true
  },
  "search_samples": {
    "label": "Search box",
    "on": "none",
    "sample": null,
    "menu": null,
    "launcher": true
  }
};

/** The file extensions cnnwidgets reads as images (cnnwidgets.datasets.IMAGE_EXTENSIONS). */
export const IMAGE_EXTENSIONS: readonly string[] = [".bmp", ".gif", ".jpe", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".pnm", ".ppm", ".tif", ".tiff", ".webp"];
