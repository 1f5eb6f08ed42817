// cnnwidgets in JupyterLab's file browser, launcher and command palette.
//
// Images get a "cnnwidgets" submenu (and Open With entries): Filter designer, Threshold segmenter,
// Layer visualizer (classify), Find similar images. Folders get "Search images in this folder".
// Each opens a tab; the tabs share one kernel, or get one each with the setting "kernelPerTab" (see bench.ts and
// schema/plugin.json). The tab's toolbar has "Open as notebook".

import { ILabShell, IRouter, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, ToolbarButton, WidgetTracker, showErrorMessage } from '@jupyterlab/apputils';
import { PageConfig, PathExt, URLExt } from '@jupyterlab/coreutils';
import { ABCWidgetFactory, DocumentRegistry, DocumentWidget } from '@jupyterlab/docregistry';
import { IDefaultFileBrowser, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon, notebookIcon } from '@jupyterlab/ui-components';
import { IJupyterWidgetRegistry } from '@jupyter-widgets/base';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Menu, Widget } from '@lumino/widgets';

import { BenchContent, BenchKernels, IBenchRequest, benchLabel, decodePayload, encodePayload } from './bench';
import { IMAGE_EXTENSIONS, WIDGETS } from './registry.generated';
import tutorials from './tutorials.json';

import '../style/index.css';

const PLUGIN_ID = 'cnnwidgets:plugin';
const CATEGORY = 'cnnwidgets';
/** Query parameter of a JupyterLab URL that opens a bench (base64 JSON of the request; see `openInLab`). */
const OPEN_PARAM = 'cnnwidgets-open';

/** File types (JupyterLab's names) that the image entries apply to. */
const IMAGE_TYPES = ['png', 'jpeg', 'tiff', 'bmp', 'webp', 'gif'];
/** One selector per type: context-menu selectors cannot hold commas. */
const IMAGE_SELECTORS = IMAGE_TYPES.map(t => `.jp-DirListing-item[data-file-type="${t}"]`);
const FOLDER_SELECTOR = '.jp-DirListing-item[data-isdir="true"]';

/** The image entries (the file browser's menu of images, Open With): kind and menu label, from the registry. */
const IMAGE_ENTRIES: [string, string][] = Object.entries(WIDGETS).flatMap(([kind, w]) =>
  w.menu === null ? [] : [[kind, w.menu] as [string, string]]
);

/** Launcher cards (and palette entries) opening a widget on a bundled sample, from the registry. */
const LAUNCHER_WIDGETS = Object.keys(WIDGETS).filter(kind => WIDGETS[kind].launcher);

const CommandIDs = {
  open: 'cnnwidgets:open',
  openFromBrowser: 'cnnwidgets:open-from-browser',
  searchFolder: 'cnnwidgets:search-folder',
  tutorial: 'cnnwidgets:open-tutorial',
  openAsNotebook: 'cnnwidgets:open-as-notebook',
  openFromUrl: 'cnnwidgets:open-from-url'
};

const cnnIcon = new LabIcon({
  name: 'cnnwidgets:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<rect x="2" y="2" width="9" height="9" rx="1"/><rect x="13" y="2" width="9" height="9" rx="1" opacity="0.6"/>' +
    '<rect x="2" y="13" width="9" height="9" rx="1" opacity="0.6"/><rect x="13" y="13" width="9" height="9" rx="1" opacity="0.3"/>' +
    '</g></svg>'
});

interface ITutorial {
  name: string;
  title: string;
  notebook: any;
}

type BenchWidget = MainAreaWidget<BenchContent>;

/** Add the "Open as notebook" button to a bench tab's toolbar. */
function addToolbar(app: JupyterFrontEnd, widget: BenchWidget): void {
  const button = new ToolbarButton({
    icon: notebookIcon,
    label: 'Open as notebook',
    tooltip: 'Write a notebook next to the image with the code that reproduces this tab, and open it',
    className: 'cnnw-open-as-notebook',
    onClick: () => void openAsNotebook(app, widget.content)
  });
  widget.toolbar.addItem('cnnwidgets-open-as-notebook', button);
}

async function openAsNotebook(app: JupyterFrontEnd, content: BenchContent): Promise<void> {
  try {
    const path = await content.openAsNotebook();
    await app.commands.execute('docmanager:open', { path, factory: 'Notebook' });
  } catch (err) {
    console.error('cnnwidgets: Open as notebook failed', err);
  }
}

/**
 * Widget factory for Open With. A document widget renames its file when its title changes, so the bench
 * cannot be one: the factory opens the same bench tab as the context menu and closes its placeholder.
 */
class BenchFactory extends ABCWidgetFactory<DocumentWidget> {
  constructor(
    options: DocumentRegistry.IWidgetFactoryOptions<DocumentWidget>,
    private _kind: string,
    private _app: JupyterFrontEnd,
    private _open: (request: IBenchRequest) => void
  ) {
    super(options);
  }

  protected createNewWidget(context: DocumentRegistry.Context): DocumentWidget {
    const path = this._app.serviceManager.contents.localPath(context.path);
    const widget = new DocumentWidget({ content: new Widget(), context });
    widget.addClass('cnnw-lab-placeholder');
    void context.ready
      .catch(() => undefined)
      .then(() => {
        this._open({ widget: this._kind, path });
        setTimeout(() => widget.dispose(), 0);
      });
    return widget;
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Open images and folders from the file browser in live cnnwidgets benches.',
  autoStart: true,
  requires: [IRenderMimeRegistry, IJupyterWidgetRegistry],
  optional: [
    IFileBrowserFactory,
    IDefaultFileBrowser,
    ILauncher,
    ICommandPalette,
    ISettingRegistry,
    ILabShell,
    IRouter
  ],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    _registry: unknown,
    browserFactory: IFileBrowserFactory | null,
    defaultBrowser: IDefaultFileBrowser | null,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    labShell: ILabShell | null,
    router: IRouter | null
  ) => {
    const { commands, serviceManager } = app;
    const tracker = new WidgetTracker<BenchWidget>({ namespace: 'cnnwidgets' });

    // The tabs' kernels: one shared by all (default) or one per tab (the setting "kernelPerTab", for new tabs).
    const kernels = new BenchKernels(app, rendermime);
    if (settingRegistry) {
      kernels.configured = settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const read = (): void => {
            kernels.kernelPerTab = settings.get('kernelPerTab').composite === true;
          };
          read();
          settings.changed.connect(read);
        })
        .catch(reason => console.error('cnnwidgets: settings not read, the tabs share one kernel', reason));
    }

    const selected = (): { path: string; type: string } | null => {
      const browser = browserFactory?.tracker.currentWidget ?? defaultBrowser;
      const item = browser?.selectedItems().next();
      if (!item || item.done || !item.value) {
        return null;
      }
      return { path: serviceManager.contents.localPath(item.value.path), type: item.value.type };
    };
    const currentFolder = (): string => {
      const browser = browserFactory?.tracker.currentWidget ?? defaultBrowser;
      return browser ? serviceManager.contents.localPath(browser.model.path) : '';
    };

    /**
     * Where the shell cannot host a bench tab (Notebook 7: each page's main area holds its one document, and
     * `shell.add(widget, 'main')` does nothing), the bench opens in JupyterLab, in a new browser tab, through
     * a URL that carries the request as base64 JSON (read back by the route below).
     */
    const openInLab = (request: IBenchRequest): void => {
      const url = `${URLExt.join(PageConfig.getBaseUrl(), 'lab')}?${OPEN_PARAM}=${encodeURIComponent(encodePayload(request))}`;
      const opened = window.open(url, '_blank');
      if (!opened) {
        void showErrorMessage(
          'cnnwidgets',
          `${benchLabel(request)} opens in JupyterLab, in a new browser tab, which the browser blocked: allow pop-ups for this page, or open ${url}`
        );
      }
    };

    /** Open a bench tab for a request (in JupyterLab, in a new browser tab, where this shell cannot host it). */
    const openBench = (request: IBenchRequest): MainAreaWidget<BenchContent> | null => {
      if (!labShell) {
        openInLab(request);
        return null;
      }
      const content = new BenchContent({ rendermime, request, kernels });
      const widget = new MainAreaWidget({ content });
      widget.id = content.id;
      widget.addClass('cnnw-lab-panel');
      widget.title.label = content.label;
      widget.title.caption = `${content.label} (cnnwidgets)`;
      widget.title.icon = cnnIcon;
      widget.title.closable = true;
      addToolbar(app, widget);
      void tracker.add(widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
      return widget;
    };

    // a request without a widget opens the registry's first kind
    const requestFrom = (args: ReadonlyPartialJSONObject): IBenchRequest => ({
      widget: String(args.widget ?? Object.keys(WIDGETS)[0]),
      path: typeof args.path === 'string' ? args.path : null,
      sample: typeof args.sample === 'string' ? args.sample : null,
      cwd: typeof args.cwd === 'string' ? args.cwd : currentFolder()
    });

    commands.addCommand(CommandIDs.open, {
      label: args => {
        const kind = String(args.widget ?? '');
        if (args.isLauncher || args.isPalette) {
          return WIDGETS[kind]?.label ?? kind;
        }
        return benchLabel(requestFrom(args));
      },
      caption: args => `Open the cnnwidgets ${WIDGETS[String(args.widget ?? '')]?.label ?? ''} in a new tab`,
      icon: args => (args.isPalette ? undefined : cnnIcon),
      execute: args => {
        const request = requestFrom(args);
        if (WIDGETS[request.widget] === undefined) {
          throw new Error(`cnnwidgets: unknown widget ${request.widget}`);
        }
        if (WIDGETS[request.widget].on === 'image' && !request.path && !request.sample) {
          request.sample = WIDGETS[request.widget].sample;
        }
        if (WIDGETS[request.widget].on === 'folder' && request.path === null) {
          request.path = request.cwd ?? '';
        }
        return openBench(request);
      }
    });

    // Context-menu entries act on the file browser's selection (the item right-clicked).
    commands.addCommand(CommandIDs.openFromBrowser, {
      label: args => IMAGE_ENTRIES.find(([k]) => k === args.widget)?.[1] ?? String(args.widget),
      caption: 'Open this image in a cnnwidgets bench tab',
      isVisible: () => {
        const item = selected();
        return !!item && item.type !== 'directory' && IMAGE_EXTENSIONS.includes(PathExt.extname(item.path).toLowerCase());
      },
      execute: args => {
        const item = selected();
        if (!item) {
          return;
        }
        return openBench({ widget: String(args.widget), path: item.path });
      }
    });
    commands.addCommand(CommandIDs.searchFolder, {
      label: args => (args.isPalette ? 'Search images in the current folder' : 'Search images in this folder'),
      caption: 'Index the images of this folder (cached per user) and search them',
      icon: args => (args.isPalette ? undefined : cnnIcon),
      execute: args => {
        let path: string;
        if (typeof args.path === 'string') {
          path = args.path;
        } else if (args.isPalette) {
          path = currentFolder();
        } else {
          const item = selected();
          path = item && item.type === 'directory' ? item.path : currentFolder();
        }
        return openBench({ widget: 'search_folder', path });
      }
    });

    // Tutorials: copy into the current folder (unless a copy is there) and open.
    const tutorialList = tutorials as ITutorial[];
    commands.addCommand(CommandIDs.tutorial, {
      label: args => {
        const t = tutorialList.find(x => x.name === args.name);
        return t ? (args.isPalette ? `Tutorial: ${t.title}` : t.title) : 'cnnwidgets tutorial';
      },
      caption: args => `Copy the tutorial ${String(args.name ?? '')} into this folder (unless it is there) and open it`,
      icon: args => (args.isPalette ? undefined : notebookIcon),
      execute: async args => {
        const t = tutorialList.find(x => x.name === args.name);
        if (!t) {
          throw new Error(`cnnwidgets: no tutorial ${String(args.name)}`);
        }
        const cwd = typeof args.cwd === 'string' ? args.cwd : currentFolder();
        const path = PathExt.join(cwd, t.name);
        try {
          await serviceManager.contents.get(path, { content: false });
        } catch {
          await serviceManager.contents.save(path, { type: 'notebook', format: 'json', content: t.notebook });
        }
        return commands.execute('docmanager:open', { path, factory: 'Notebook' });
      }
    });

    commands.addCommand(CommandIDs.openAsNotebook, {
      label: 'Open as notebook',
      caption: 'Write a notebook that reproduces the current cnnwidgets tab, and open it',
      isEnabled: () => tracker.currentWidget !== null,
      execute: () => {
        const widget = tracker.currentWidget;
        if (widget) {
          return openAsNotebook(app, widget.content);
        }
      }
    });

    // File browser context menu: a "cnnwidgets" submenu on images, one entry on folders.
    const submenu = new Menu({ commands });
    submenu.title.label = 'cnnwidgets';
    submenu.title.icon = cnnIcon;
    submenu.id = 'cnnwidgets-image-submenu';
    for (const [kind] of IMAGE_ENTRIES) {
      submenu.addItem({ command: CommandIDs.openFromBrowser, args: { widget: kind } });
    }
    for (const selector of IMAGE_SELECTORS) {
      app.contextMenu.addItem({ type: 'submenu', submenu, selector, rank: 3 });
    }
    app.contextMenu.addItem({ command: CommandIDs.searchFolder, selector: FOLDER_SELECTOR, rank: 3 });

    // Open With: one widget factory per image entry; the image viewer stays the default. Only in JupyterLab:
    // in Notebook 7, Open With opens the placeholder document in a page of its own, not a place for a bench.
    for (const [kind, label] of labShell ? IMAGE_ENTRIES : []) {
      const factory = new BenchFactory(
        {
          name: `cnnwidgets-${kind}`,
          label: `${label} (cnnwidgets)`,
          fileTypes: IMAGE_TYPES,
          defaultFor: [],
          modelName: 'base64',
          readOnly: true,
          canStartKernel: false,
          preferKernel: false
        },
        kind,
        app,
        request => void openBench(request)
      );
      app.docRegistry.addWidgetFactory(factory);
    }

    // A JupyterLab URL with ?cnnwidgets-open=<base64 JSON request> (what openInLab makes) opens that bench once
    // the layout is restored; the parameter is then dropped from the address, so a reload does not open it again.
    commands.addCommand(CommandIDs.openFromUrl, {
      execute: async args => {
        const params = new URLSearchParams(String(args.search ?? ''));
        const payload = params.get(OPEN_PARAM);
        const url = new URL(window.location.href);
        url.searchParams.delete(OPEN_PARAM);
        window.history.replaceState(window.history.state, '', url.toString());
        if (!payload) {
          return;
        }
        let request: unknown;
        try {
          request = decodePayload(payload);
        } catch (err) {
          console.error('cnnwidgets: the URL does not hold a bench request', err);
          return;
        }
        if (typeof request !== 'object' || request === null || Array.isArray(request)) {
          return;
        }
        await app.restored;
        // the open command checks the kind and the fields' types; the tab refuses paths out of the root
        return commands.execute(CommandIDs.open, request as ReadonlyPartialJSONObject);
      }
    });
    if (labShell && router) {
      router.register({ command: CommandIDs.openFromUrl, pattern: new RegExp(`[?&]${OPEN_PARAM}=`) });
    }

    // Launcher: one card per widget (on a sample), one per tutorial notebook; the same in the palette.
    LAUNCHER_WIDGETS.forEach((kind, rank) => {
      launcher?.add({ command: CommandIDs.open, args: { widget: kind, isLauncher: true }, category: CATEGORY, rank });
      palette?.addItem({ command: CommandIDs.open, args: { widget: kind, isPalette: true }, category: CATEGORY });
    });
    tutorialList.forEach((t, i) => {
      launcher?.add({ command: CommandIDs.tutorial, args: { name: t.name }, category: CATEGORY, rank: 100 + i });
      palette?.addItem({ command: CommandIDs.tutorial, args: { name: t.name, isPalette: true }, category: CATEGORY });
    });
    palette?.addItem({ command: CommandIDs.searchFolder, args: { isPalette: true }, category: CATEGORY });
    palette?.addItem({ command: CommandIDs.openAsNotebook, category: CATEGORY });
  }
};

export default plugin;
