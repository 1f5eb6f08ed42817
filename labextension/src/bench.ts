// A bench tab's content: a status line over an output area that shows one widget from the tab's own kernel.
//
// The kernel is started from the server's Python kernelspec with its working directory at the server's root
// (the session path has no folder), and runs one fixed line whose only variable part is base64 text: the
// request (widget kind, file path) travels as JSON data, never as Python source.

import { JupyterFrontEnd } from '@jupyterlab/application';
import { ISessionContext, SessionContext } from '@jupyterlab/apputils';
import { OutputArea, OutputAreaModel } from '@jupyterlab/outputarea';
import { IRenderMimeRegistry, RenderMimeRegistry } from '@jupyterlab/rendermime';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { registerWidgetManager } from '@jupyter-widgets/jupyterlab-manager';
import { PromiseDelegate, UUID } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { Signal } from '@lumino/signaling';
import { Panel, Widget } from '@lumino/widgets';

/** What a tab asks its kernel to open. */
export interface IBenchRequest {
  /** a widget kind known to cnnwidgets.lab.WIDGETS */
  widget: string;
  /** file or folder relative to the server's root, as the file browser names it */
  path?: string | null;
  /** bundled sample image, for tabs opened without a file */
  sample?: string | null;
  /** folder (relative to the root) where "Open as notebook" writes when there is no file */
  cwd?: string | null;
}

/** Kinds, their tab labels and what they open on. */
export const WIDGETS: { [kind: string]: { label: string; on: 'image' | 'folder' | 'none' } } = {
  filter_designer: { label: 'Filter designer', on: 'image' },
  threshold_segmenter: { label: 'Threshold segmenter', on: 'image' },
  layer_visualizer: { label: 'Layer visualizer', on: 'image' },
  find_similar: { label: 'Find similar images', on: 'image' },
  pipeline: { label: 'Pipeline', on: 'image' },
  search_folder: { label: 'Search images', on: 'folder' },
  convolution_playground: { label: 'Convolution playground', on: 'none' },
  training_dashboard: { label: 'Training dashboard', on: 'none' },
  search_samples: { label: 'Search box', on: 'none' }
};

/** Default sample per image widget when opened from the launcher or the palette. */
export const DEFAULT_SAMPLES: { [kind: string]: string } = {
  filter_designer: 'astronaut',
  threshold_segmenter: 'coins',
  layer_visualizer: 'chelsea',
  pipeline: 'coins'
};

/** The tab title: "Filter designer — photo.jpg". */
export function benchLabel(request: IBenchRequest): string {
  const name = WIDGETS[request.widget]?.label ?? request.widget;
  if (request.path !== undefined && request.path !== null) {
    const base = request.path.split('/').filter(s => s).pop();
    return `${name} — ${base ?? 'root folder'}`;
  }
  return request.sample ? `${name} — ${request.sample}` : name;
}

/** A reason to refuse a path before any kernel starts (absolute, `..`, NUL), or null when it may be asked for. */
export function refusePath(path: string | null | undefined): string | null {
  if (path === undefined || path === null) {
    return null;
  }
  if (path.includes('\u0000')) {
    return `${JSON.stringify(path)} contains a NUL character: refused`;
  }
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) {
    return `${JSON.stringify(path)} is an absolute path; only files under the server's root can be opened`;
  }
  if (path.split('/').includes('..')) {
    return `${JSON.stringify(path)} leads outside the server's root folder: refused`;
  }
  return null;
}

/** Base64 of the UTF-8 JSON of `value` (the only variable part of the code a tab runs). */
export function encodePayload(value: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  const b64 = btoa(binary);
  if (!/^[A-Za-z0-9+/=]*$/.test(b64)) {
    throw new Error('payload encoding failed');
  }
  return b64;
}

/** The Python the tab runs: a fixed line with the payload as base64 text. */
export function openCode(request: IBenchRequest): string {
  return `from cnnwidgets.lab import open_bench\nopen_bench("${encodePayload(request)}")`;
}

export namespace BenchContent {
  export interface IOptions {
    app: JupyterFrontEnd;
    rendermime: IRenderMimeRegistry;
    request: IBenchRequest;
  }
}

/**
 * The content of a bench tab. It starts its kernel when constructed and shuts it down when disposed
 * (closing the tab), so nothing keeps running after the tab is gone.
 */
export class BenchContent extends Panel {
  constructor(options: BenchContent.IOptions) {
    super();
    this.id = `cnnwidgets-bench-${UUID.uuid4()}`;
    this.addClass('cnnw-lab-tab');
    this._app = options.app;
    this.request = options.request;
    this.label = benchLabel(options.request);
    this._statusNode = document.createElement('div');
    this._status = new Widget({ node: this._statusNode });
    this._status.addClass('cnnw-lab-status');
    this.addWidget(this._status);
    this._rendermime = options.rendermime.clone();
    this._outputArea = new OutputArea({ model: new OutputAreaModel({ trusted: true }), rendermime: this._rendermime });
    this._outputArea.addClass('cnnw-lab-output');
    this.addWidget(this._outputArea);
    void this._start();
  }

  readonly request: IBenchRequest;
  readonly label: string;

  /** Resolves when the first request has run (with its reply status) or failed. */
  get opened(): Promise<string> {
    return this._opened.promise;
  }

  /** The tab's session context (null before it starts). */
  get sessionContext(): ISessionContext | null {
    return this._sessionContext;
  }

  /** The status line's kind: "info", "busy" or "error". */
  get statusKind(): string {
    return this._statusKind;
  }

  /** The status line's text. */
  get statusText(): string {
    return this._statusNode.textContent ?? '';
  }

  setStatus(text: string, kind: 'info' | 'busy' | 'error' = 'info'): void {
    this._statusNode.textContent = text;
    this._status.toggleClass('cnnw-mod-error', kind === 'error');
    this._status.toggleClass('cnnw-mod-busy', kind === 'busy');
    this._statusKind = kind;
  }

  /** Ask the kernel to write the notebook that reproduces the tab; resolves to its path (relative to the root). */
  async openAsNotebook(): Promise<string> {
    const kernel = this._sessionContext?.session?.kernel;
    if (!kernel) {
      throw new Error('the kernel of this tab is not running');
    }
    const previous = this._statusNode.textContent ?? '';
    this.setStatus('writing the notebook …', 'busy');
    const future = kernel.requestExecute({
      code: 'from cnnwidgets.lab import open_as_notebook as _cnnw_open_as_notebook\n_cnnw_reply = _cnnw_open_as_notebook()',
      store_history: false,
      silent: false,
      user_expressions: { reply: '_cnnw_reply' }
    });
    const reply = await future.done;
    const content = reply.content as KernelMessage.IExecuteReply;
    if (content.status !== 'ok') {
      const err = content as unknown as KernelMessage.IReplyErrorContent;
      const text = `Open as notebook failed: ${err.ename}: ${err.evalue}`;
      this.setStatus(text, 'error');
      throw new Error(text);
    }
    const expr = (content.user_expressions as any)?.reply;
    const path = expr?.data?.['application/json']?.path;
    if (expr?.status !== 'ok' || typeof path !== 'string') {
      const text = `Open as notebook failed: ${expr?.ename ?? 'no reply'}: ${expr?.evalue ?? ''}`;
      this.setStatus(text, 'error');
      throw new Error(text);
    }
    this.setStatus(`${previous ? previous + ' · ' : ''}wrote ${path}`);
    return path;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    const session = this._sessionContext;
    this._widgetManager?.dispose();
    this._widgetManager = null;
    super.dispose();
    // shut the kernel down (also when it is still starting: _start checks isDisposed)
    if (session) {
      void session
        .shutdown()
        .catch(() => undefined)
        .then(() => session.dispose());
    }
  }

  private async _start(): Promise<void> {
    const refusal = refusePath(this.request.path);
    if (refusal) {
      this.setStatus(refusal, 'error');
      this._opened.resolve('refused');
      return;
    }
    const manager = this._app.serviceManager;
    this.setStatus('starting a kernel …', 'busy');
    try {
      await manager.kernelspecs.ready;
      const specs = manager.kernelspecs.specs;
      const name = specs?.kernelspecs['python3'] ? 'python3' : specs?.default;
      if (!name) {
        throw new Error('the server has no Python kernel');
      }
      const sessionContext = new SessionContext({
        sessionManager: manager.sessions,
        specsManager: manager.kernelspecs,
        // no folder in the path: the kernel starts in the server's root, where the request's paths are relative
        path: `cnnwidgets-${UUID.uuid4()}`,
        name: this.label,
        type: 'cnnwidgets',
        kernelPreference: { name, shouldStart: true, canStart: true, autoStartDefault: true }
      });
      this._sessionContext = sessionContext;
      await sessionContext.initialize();
      if (this.isDisposed) {
        await sessionContext.shutdown();
        sessionContext.dispose();
        return;
      }
      const kernel = sessionContext.session?.kernel;
      if (!kernel) {
        throw new Error('the kernel did not start');
      }
      sessionContext.statusChanged.connect(this._onKernelStatus, this);
      this._widgetManager = registerWidgetManager(
        this._widgetContext(sessionContext) as any,
        this._rendermime,
        [][Symbol.iterator]()
      );
      await sessionContext.ready;
      await new Promise(resolve => setTimeout(resolve, 0)); // the manager binds its renderer after `ready`
      await this._run(kernel);
    } catch (err) {
      if (!this.isDisposed) {
        this.setStatus(`Kernel error: ${(err as Error).message ?? err}`, 'error');
      }
      this._opened.resolve('error');
    }
  }

  private async _run(kernel: Kernel.IKernelConnection): Promise<void> {
    this.setStatus(`opening ${this.label} …`, 'busy');
    const future = kernel.requestExecute({ code: openCode(this.request), store_history: false, stop_on_error: true });
    this._outputArea.future = future;
    const reply = await future.done;
    if (this.isDisposed) {
      return;
    }
    const content = reply.content;
    if (content.status === 'error') {
      this.setStatus(`${content.ename}: ${content.evalue}`, 'error');
      this._opened.resolve('error');
    } else {
      this.setStatus(`${this.label} — kernel ${kernel.name} (${kernel.id.slice(0, 8)})`);
      this._opened.resolve('ok');
    }
  }

  private _onKernelStatus(sender: ISessionContext, status: Kernel.Status): void {
    if (this.isDisposed) {
      return;
    }
    if (status === 'dead' || status === 'autorestarting' || status === 'restarting') {
      const text =
        status === 'dead'
          ? 'Kernel error: the kernel died; close the tab and open it again'
          : 'Kernel error: the kernel is restarting; the widget is gone — close the tab and open it again';
      this.setStatus(text, 'error');
    }
  }

  /** The bits of a document context the ipywidgets manager reads, for a tab that has no document. */
  private _widgetContext(sessionContext: ISessionContext): unknown {
    return {
      sessionContext,
      path: sessionContext.path,
      saveState: new Signal<unknown, string>(this),
      model: { getMetadata: (): undefined => undefined, setMetadata: (): void => undefined, dirty: false },
      urlResolver: new RenderMimeRegistry.UrlResolver({
        path: sessionContext.path,
        contents: this._app.serviceManager.contents
      })
    };
  }

  private _app: JupyterFrontEnd;
  private _status: Widget;
  private _statusNode: HTMLDivElement;
  private _statusKind: 'info' | 'busy' | 'error' = 'info';
  private _rendermime: IRenderMimeRegistry;
  private _outputArea: OutputArea;
  private _sessionContext: SessionContext | null = null;
  private _widgetManager: IDisposable | null = null;
  private _opened = new PromiseDelegate<string>();
}
