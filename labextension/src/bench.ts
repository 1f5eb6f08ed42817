// A bench tab's content: a status line over an output area that shows one widget from a kernel, and the kernels
// the tabs use (BenchKernel, BenchKernels).
//
// By default the tabs of one JupyterLab page share one kernel: the first tab starts it (the others wait for that
// start instead of starting their own), each tab runs its request on it with its own output area, a tab that
// closes while others stay closes its own widgets in the kernel, and the last one to close shuts the kernel down.
// The setting "kernelPerTab" gives each tab its own kernel instead. Kernels start from the server's Python
// kernelspec with their working directory at the server's root (the session path has no folder), and every line
// a tab runs is fixed but for base64 text: the request (tab id, widget kind, file path) travels as JSON data,
// never as Python source (cnnwidgets.labtabs decodes it).

import { JupyterFrontEnd } from '@jupyterlab/application';
import { ISessionContext, SessionContext } from '@jupyterlab/apputils';
import { OutputArea, OutputAreaModel } from '@jupyterlab/outputarea';
import { IRenderMime, IRenderMimeRegistry, RenderMimeRegistry } from '@jupyterlab/rendermime';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { registerWidgetManager } from '@jupyter-widgets/jupyterlab-manager';
import { PromiseDelegate, UUID } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';
import { Panel, Widget } from '@lumino/widgets';

import { WIDGETS } from './registry.generated';

/** What a tab asks its kernel to open. */
export interface IBenchRequest {
  /** a widget kind of the widget registry (cnnwidgets/registry.py, WIDGETS in registry.generated.ts) */
  widget: string;
  /** file or folder relative to the server's root, as the file browser names it */
  path?: string | null;
  /** bundled sample image, for tabs opened without a file */
  sample?: string | null;
  /** folder (relative to the root) where "Open as notebook" writes when there is no file */
  cwd?: string | null;
}

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

/** The value `encodePayload` made, decoded (throws on anything but base64 of UTF-8 JSON). */
export function decodePayload(b64: string): unknown {
  if (!/^[A-Za-z0-9+/=]*$/.test(b64) || b64.length > 64 * 1024) {
    throw new Error('not a cnnwidgets payload');
  }
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) {
    bytes[i] = binary.charCodeAt(i);
  }
  return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
}

/** The Python a tab runs to open its widget: fixed lines with the tab id and the request as base64 text. */
export function openCode(tab: string, request: IBenchRequest): string {
  return `from cnnwidgets.labtabs import open_tab\nopen_tab("${encodePayload({ tab, request })}")`;
}

/** The Python that closes what a tab opened (and the widget models it showed), for a tab closing early. */
export function closeCode(tab: string, models: string[]): string {
  return `from cnnwidgets.labtabs import close_tab\nclose_tab("${encodePayload({ tab, models })}")`;
}

/** The Python of "Open as notebook" for one tab; `_cnnw_reply` holds `{"path": ...}`. */
export function notebookCode(tab: string): string {
  return `from cnnwidgets.labtabs import tab_notebook\n_cnnw_reply = tab_notebook("${encodePayload({ tab })}")`;
}

/** A user expression: the kernel's pid, memory and its memory cgroup's count of out-of-memory kills. */
const FACTS_EXPRESSION = "__import__('cnnwidgets.labtabs', fromlist=['kernel_facts']).kernel_facts()";

/** What cnnwidgets.labtabs.kernel_facts tells of a kernel. */
export interface IKernelFacts {
  pid: number;
  rss_mib: number | null;
  peak_mib: number | null;
  oom_kills: number | null;
  tabs: number;
}

/** The widget view mime type of ipywidgets (outputs holding a widget's model id). */
const WIDGET_VIEW_MIMETYPE = 'application/vnd.jupyter.widget-view+json';

/** Run `code` on `kernel` and return the reply's `application/json` user expression `name`, or throw. */
async function evaluate(kernel: Kernel.IKernelConnection, code: string, expression: string): Promise<any> {
  const future = kernel.requestExecute({
    code,
    silent: false,
    store_history: false,
    stop_on_error: false,
    user_expressions: { value: expression }
  });
  const reply = await future.done;
  const content = reply.content as KernelMessage.IExecuteReply;
  if (content.status !== 'ok') {
    const err = content as unknown as KernelMessage.IReplyErrorContent;
    throw new Error(`${err.ename ?? content.status}: ${err.evalue ?? ''}`);
  }
  const value = (content.user_expressions as any)?.value;
  if (value?.status !== 'ok') {
    throw new Error(`${value?.ename ?? 'no reply'}: ${value?.evalue ?? ''}`);
  }
  return value.data?.['application/json'];
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}

/** What a tab shows when its kernel is gone; `oom` when a memory limit is known to have ended it. */
export function deathText(oom: boolean, lastMiB: number | null = null): string {
  const seen = lastMiB !== null ? `, last seen using ${Math.round(lastMiB)} MiB` : '';
  const cause = oom ? 'the kernel ran out of memory (a memory limit ended it' + seen + ')' : 'the kernel died';
  return `Kernel error: ${cause}; close this tab and open it again (a new tab starts a fresh kernel)`;
}

export namespace BenchKernel {
  export interface IOptions {
    app: JupyterFrontEnd;
    rendermime: IRenderMimeRegistry;
    /** shared by the page's tabs (true) or one tab's own (false) */
    shared: boolean;
    /** the session's name (shown in JupyterLab's running-kernels list) */
    name: string;
  }
}

/**
 * One kernel (its session and its widget manager) used by one or more bench tabs.
 *
 * It starts when constructed; `ready` resolves once the kernel runs and the widget manager is bound. Tabs
 * `attach` and `detach`; when the last one detaches the kernel is shut down. When the kernel dies (shut down by
 * someone else, killed, or restarted by the server after its process ended) it is retired: `retired` is emitted
 * with the text the tabs show, and it is shut down, so the next tab starts a fresh kernel.
 */
export class BenchKernel {
  constructor(options: BenchKernel.IOptions) {
    this._app = options.app;
    this.shared = options.shared;
    this._name = options.name;
    this._rendermime = options.rendermime.clone();
    this.ready = this._start();
    this.ready.catch(() => undefined);
  }

  /** Resolves to the kernel connection when the kernel runs and the widgets can render; rejects when it cannot. */
  readonly ready: Promise<Kernel.IKernelConnection>;
  readonly shared: boolean;

  /** The server's kernel id (null before it starts). */
  get id(): string | null {
    return this._sessionContext?.session?.kernel?.id ?? this._lastId;
  }

  /** The kernel's process id, memory and OOM-kill count, as it last told them (null before it starts). */
  get facts(): IKernelFacts | null {
    return this._facts;
  }

  /** True once the kernel is gone or going (died, or its last tab closed): no tab may use it any more. */
  get isRetired(): boolean {
    return this._retired;
  }

  /** The error text the tabs show since the kernel died (null while it runs, or when it was shut down on purpose). */
  get deathText(): string | null {
    return this._deathText;
  }

  /** Emitted once, when the kernel is retired, with the text for the tabs (null when shut down on purpose). */
  get retired(): ISignal<this, string | null> {
    return this._retiredSignal;
  }

  /** How many tabs use the kernel. */
  get users(): number {
    return this._users.size;
  }

  get sessionContext(): ISessionContext | null {
    return this._sessionContext;
  }

  attach(tab: BenchContent): void {
    this._users.add(tab);
  }

  /** A tab is done with the kernel; `models` are the widget models it showed (closed in the kernel). */
  detach(tab: BenchContent, models: string[], opened: boolean): void {
    if (!this._users.delete(tab) || this._retired) {
      return;
    }
    if (this._users.size === 0) {
      this._retire(null);
      return;
    }
    if (opened) {
      const kernel = this._sessionContext?.session?.kernel;
      // queued after the tab's own request, so it also closes a widget that was still opening
      kernel?.requestExecute({ code: closeCode(tab.id, models), silent: true, store_history: false, stop_on_error: false });
    }
  }

  /** Give the tab's rendermime the widget renderer bound to this kernel's widget manager. */
  bindRendermime(rendermime: IRenderMimeRegistry): void {
    if (this._widgetFactory) {
      rendermime.removeMimeType(WIDGET_VIEW_MIMETYPE);
      rendermime.addFactory(this._widgetFactory, -10);
    }
  }

  /** The facts a reply brought (memory after a tab opened: the "last seen" figure when the kernel dies). */
  noteFacts(facts: IKernelFacts | null | undefined): void {
    if (facts && typeof facts.pid === 'number') {
      this._facts = facts;
    }
  }

  /** Ask the kernel again for its facts (memory, OOM count); null when it cannot say. */
  async refreshFacts(): Promise<IKernelFacts | null> {
    const kernel = this._sessionContext?.session?.kernel;
    if (!kernel || this._retired) {
      return this._facts;
    }
    try {
      this._facts = (await evaluate(kernel, '', FACTS_EXPRESSION)) as IKernelFacts;
    } catch {
      // the facts are a help for the messages, never a reason to fail
    }
    return this._facts;
  }

  private async _start(): Promise<Kernel.IKernelConnection> {
    const manager = this._app.serviceManager;
    try {
      await manager.kernelspecs.ready;
      const specs = manager.kernelspecs.specs;
      const name = specs?.kernelspecs['python3'] ? 'python3' : specs?.default;
      if (!name) {
        throw new Error('the server has no Python kernel');
      }
      if (this._retired) {
        throw new Error('the kernel was shut down');
      }
      const sessionContext = new SessionContext({
        sessionManager: manager.sessions,
        specsManager: manager.kernelspecs,
        // no folder in the path: the kernel starts in the server's root, where the request's paths are relative
        path: `cnnwidgets-${UUID.uuid4()}`,
        name: this._name,
        type: 'cnnwidgets',
        kernelPreference: { name, shouldStart: true, canStart: true, autoStartDefault: true }
      });
      this._sessionContext = sessionContext;
      const initialize = sessionContext.initialize();
      this._initialized = initialize.then(() => undefined, () => undefined);
      await initialize;
      const kernel = sessionContext.session?.kernel;
      if (this._retired) {
        throw new Error('the kernel was shut down');
      }
      if (!kernel) {
        throw new Error('the kernel did not start');
      }
      this._lastId = kernel.id;
      kernel.iopubMessage.connect(this._onIopub, this);
      sessionContext.statusChanged.connect(this._onStatus, this);
      sessionContext.connectionStatusChanged.connect(this._onConnectionStatus, this);
      sessionContext.sessionChanged.connect(this._onSessionChanged, this);
      const placeholder = this._rendermime.getFactory(WIDGET_VIEW_MIMETYPE);
      this._widgetManager = registerWidgetManager(
        this._widgetContext(sessionContext) as any,
        this._rendermime,
        [][Symbol.iterator]()
      );
      await sessionContext.ready;
      // the manager binds its renderer to our rendermime a few promise turns after `ready`
      for (let i = 0; i < 100 && this._rendermime.getFactory(WIDGET_VIEW_MIMETYPE) === placeholder; i++) {
        await sleep(i < 5 ? 0 : 20);
      }
      this._widgetFactory = this._rendermime.getFactory(WIDGET_VIEW_MIMETYPE) ?? null;
      // one round trip that imports the kernel side and says how many OOM kills its cgroup had so far
      this._facts = (await evaluate(kernel, '', FACTS_EXPRESSION)) as IKernelFacts;
      if (this._retired) {
        throw new Error(this._deathText ?? 'the kernel was shut down');
      }
      this._ready = true;
      return kernel;
    } catch (err) {
      if (!this._retired) {
        this._retire(null);
      }
      throw err;
    }
  }

  private _onStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === 'dead') {
      this._retire(deathText(false));
    } else if (status === 'restarting' || status === 'autorestarting') {
      // the extension never restarts a bench kernel: the server restarted it after its process ended
      this._retire(deathText(false), true);
    }
  }

  private _onConnectionStatus(_: ISessionContext, status: Kernel.ConnectionStatus): void {
    if (this._ready && !this._retired && status !== 'connected') {
      // a kernel shut down through the REST API closes the socket: check at once instead of at the next poll
      void this._app.serviceManager.kernels.refreshRunning().catch(() => undefined);
    }
  }

  private _onIopub(_: Kernel.IKernelConnection, msg: KernelMessage.IIOPubMessage): void {
    const parent = (msg.parent_header as Partial<KernelMessage.IHeader>)?.msg_type;
    if (msg.header.msg_type === 'status' && parent === 'shutdown_request' && !this._retired && !this._watching) {
      // someone (the running-kernels panel, the REST API) is shutting the kernel down: the server drops it from
      // its list when the process has ended, so look until then rather than wait for the next 10-s poll
      this._watching = true;
      void (async () => {
        for (let i = 0; i < 40 && !this._retired; i++) {
          await sleep(250);
          await this._app.serviceManager.kernels.refreshRunning().catch(() => undefined);
        }
        this._watching = false;
      })();
    }
  }

  private _onSessionChanged(_: ISessionContext, change: { newValue: unknown }): void {
    if (!change.newValue && !this._retired) {
      this._retire(deathText(false));
    }
  }

  /** Retire the kernel: tell the tabs (`text`, null when shut down on purpose), then shut it down. */
  private _retire(text: string | null, restarted = false): void {
    if (this._retired) {
      return;
    }
    this._retired = true;
    this._deathText = text;
    this._retiredSignal.emit(text);
    void this._end(restarted);
  }

  private async _end(restarted: boolean): Promise<void> {
    const session = this._sessionContext;
    if (restarted && session && this._facts?.oom_kills !== null && this._facts?.oom_kills !== undefined) {
      // the server restarted the kernel in the same memory cgroup: did that cgroup's OOM killer end the old one?
      const before = this._facts.oom_kills;
      const last = this._facts.rss_mib;
      try {
        const kernel = session.session?.kernel;
        if (kernel) {
          const facts = (await Promise.race([
            (async () => {
              for (let i = 0; i < 150 && kernel.status !== 'idle' && !kernel.isDisposed; i++) {
                await sleep(100);
              }
              return evaluate(kernel, '', FACTS_EXPRESSION);
            })(),
            sleep(20000).then(() => null)
          ])) as IKernelFacts | null;
          if (facts && facts.oom_kills !== null && facts.oom_kills > before) {
            this._deathText = deathText(true, last);
            this._retiredSignal.emit(this._deathText);
          }
        }
      } catch {
        // no facts: the tabs keep "the kernel died"
      }
    }
    this._widgetManager?.dispose();
    this._widgetManager = null;
    if (session) {
      await this._initialized; // a kernel still starting is shut down once it runs
      await session
        .shutdown()
        .catch(() => undefined)
        .then(() => session.dispose());
    }
  }

  /** The bits of a document context the ipywidgets manager reads, for tabs that have no document. */
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
  private _name: string;
  private _rendermime: IRenderMimeRegistry;
  private _sessionContext: SessionContext | null = null;
  private _initialized: Promise<void> = Promise.resolve();
  private _widgetManager: IDisposable | null = null;
  private _widgetFactory: IRenderMime.IRendererFactory | null = null;
  private _users = new Set<BenchContent>();
  private _facts: IKernelFacts | null = null;
  private _lastId: string | null = null;
  private _ready = false;
  private _watching = false;
  private _retired = false;
  private _deathText: string | null = null;
  private _retiredSignal = new Signal<this, string | null>(this);
}

/**
 * The kernels of the page's bench tabs: one shared kernel (default), or one per tab with `kernelPerTab`.
 * A retired shared kernel is forgotten, so the next tab starts a fresh one.
 */
export class BenchKernels {
  constructor(app: JupyterFrontEnd, rendermime: IRenderMimeRegistry) {
    this._app = app;
    this._rendermime = rendermime;
  }

  /** One kernel per tab instead of one shared by all (the setting "kernelPerTab"); applies to new tabs. */
  kernelPerTab = false;

  /** Resolves once the settings are read; tabs wait for it before choosing their kernel. */
  configured: Promise<void> = Promise.resolve();

  /** The shared kernel, when one runs or starts. */
  get shared(): BenchKernel | null {
    return this._shared;
  }

  /** The kernels of the open tabs (shared and own), for the running-kernels checks of the tests. */
  get kernels(): BenchKernel[] {
    return [...this._all];
  }

  /** The kernel a new tab uses: the shared one (started by the first tab), or its own. */
  acquire(tab: BenchContent): BenchKernel {
    if (!this.kernelPerTab && this._shared && !this._shared.isRetired) {
      this._shared.attach(tab);
      return this._shared;
    }
    const kernel = new BenchKernel({
      app: this._app,
      rendermime: this._rendermime,
      shared: !this.kernelPerTab,
      name: this.kernelPerTab ? tab.label : 'cnnwidgets benches'
    });
    this._all.add(kernel);
    kernel.retired.connect(() => {
      if (this._shared === kernel) {
        this._shared = null;
      }
      this._all.delete(kernel);
    });
    if (!this.kernelPerTab) {
      this._shared = kernel;
    }
    kernel.attach(tab);
    return kernel;
  }

  private _app: JupyterFrontEnd;
  private _rendermime: IRenderMimeRegistry;
  private _shared: BenchKernel | null = null;
  private _all = new Set<BenchKernel>();
}

export namespace BenchContent {
  export interface IOptions {
    rendermime: IRenderMimeRegistry;
    request: IBenchRequest;
    kernels: BenchKernels;
  }
}

/**
 * The content of a bench tab. It takes its kernel from `kernels` (the shared one, started by the first tab,
 * or its own) and runs its request there; disposing it (closing the tab) closes its widgets in a shared kernel
 * that other tabs still use, or shuts the kernel down when it was the last tab on it.
 */
export class BenchContent extends Panel {
  constructor(options: BenchContent.IOptions) {
    super();
    this.id = `cnnwidgets-bench-${UUID.uuid4()}`;
    this.addClass('cnnw-lab-tab');
    this._kernels = options.kernels;
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

  /** The kernel the tab uses (null before it chose one, or when its path was refused). */
  get kernel(): BenchKernel | null {
    return this._kernel;
  }

  /** The server's id of the tab's kernel (null before it starts). */
  get kernelId(): string | null {
    return this._kernel?.id ?? null;
  }

  /** The tab's session context (null before it starts); shared with the other tabs of a shared kernel. */
  get sessionContext(): ISessionContext | null {
    return this._kernel?.sessionContext ?? null;
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
    const kernel = this._kernel && !this._kernel.isRetired ? this._kernel.sessionContext?.session?.kernel : null;
    if (!kernel || this._outcome !== 'ok') {
      throw new Error('the kernel of this tab is not running');
    }
    const previous = this._statusNode.textContent ?? '';
    this.setStatus('writing the notebook …', 'busy');
    let path: unknown;
    try {
      path = (await evaluate(kernel, notebookCode(this.id), '_cnnw_reply'))?.path;
      if (typeof path !== 'string') {
        throw new Error('no reply: no path');
      }
    } catch (err) {
      const text = `Open as notebook failed: ${(err as Error).message ?? err}`;
      if (!this.isDisposed && !this._died) {
        this.setStatus(text, 'error');
      }
      throw new Error(text);
    }
    this.setStatus(`${previous ? previous + ' · ' : ''}wrote ${path}`);
    return path;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    const kernel = this._kernel;
    const models = this._modelIds();
    super.dispose(); // the output area and its widget views go
    kernel?.retired.disconnect(this._onRetired, this);
    kernel?.detach(this, models, this._sent);
  }

  /** The widget model ids shown in the tab's output. */
  private _modelIds(): string[] {
    const ids: string[] = [];
    const model = this._outputArea.model;
    for (let i = 0; i < model.length; i++) {
      const id = (model.get(i).data[WIDGET_VIEW_MIMETYPE] as any)?.model_id;
      if (typeof id === 'string') {
        ids.push(id);
      }
    }
    return ids;
  }

  private async _start(): Promise<void> {
    const refusal = refusePath(this.request.path);
    if (refusal) {
      this.setStatus(refusal, 'error');
      this._finish('refused');
      return;
    }
    await this._kernels.configured;
    if (this.isDisposed) {
      return;
    }
    const bench = this._kernels.acquire(this);
    this._kernel = bench;
    bench.retired.connect(this._onRetired, this);
    this.setStatus(
      bench.shared && bench.users > 1 ? 'waiting for the shared kernel …' : 'starting a kernel …',
      'busy'
    );
    let kernel: Kernel.IKernelConnection;
    try {
      kernel = await bench.ready;
    } catch (err) {
      if (!this.isDisposed && !this._died) {
        this.setStatus(`Kernel error: ${(err as Error).message ?? err}`, 'error');
      }
      this._finish('error');
      return;
    }
    if (this.isDisposed || this._died) {
      this._finish('error');
      return;
    }
    bench.bindRendermime(this._rendermime);
    try {
      await this._run(kernel, bench);
    } catch (err) {
      if (!this.isDisposed && !this._died) {
        this.setStatus(`Kernel error: ${(err as Error).message ?? err}`, 'error');
      }
      this._finish('error');
    }
  }

  private async _run(kernel: Kernel.IKernelConnection, bench: BenchKernel): Promise<void> {
    this.setStatus(`opening ${this.label} …`, 'busy');
    // stop_on_error false: on a shared kernel, one tab's failed request must not abort the others' queued ones
    const future = kernel.requestExecute({
      code: openCode(this.id, this.request),
      store_history: false,
      stop_on_error: false,
      user_expressions: { facts: FACTS_EXPRESSION }
    });
    this._sent = true;
    this._outputArea.future = future;
    const reply = await future.done;
    const facts = (reply.content as any).user_expressions?.facts;
    if (facts?.status === 'ok') {
      bench.noteFacts(facts.data?.['application/json'] as IKernelFacts);
    }
    if (this.isDisposed || this._died) {
      this._finish('error');
      return;
    }
    const content = reply.content;
    if (content.status === 'error') {
      this.setStatus(`${content.ename}: ${content.evalue}`, 'error');
      this._finish('error');
    } else if (content.status !== 'ok') {
      this.setStatus(`Kernel error: the kernel did not run the request (${content.status})`, 'error');
      this._finish('error');
    } else {
      const how = bench.shared ? 'shared kernel' : 'own kernel';
      this.setStatus(`${this.label} — ${how} ${kernel.name} (${kernel.id.slice(0, 8)})`);
      this._finish('ok');
    }
  }

  private _finish(outcome: string): void {
    if (this._outcome === null) {
      this._outcome = outcome;
    }
    this._opened.resolve(outcome);
  }

  private _onRetired(_: BenchKernel, text: string | null): void {
    if (this.isDisposed || text === null) {
      return;
    }
    this._died = true;
    this.setStatus(text, 'error');
    this.addClass('cnnw-mod-kernel-dead');
    this._finish('error');
  }

  private _kernels: BenchKernels;
  private _kernel: BenchKernel | null = null;
  private _status: Widget;
  private _statusNode: HTMLDivElement;
  private _statusKind: 'info' | 'busy' | 'error' = 'info';
  private _rendermime: IRenderMimeRegistry;
  private _outputArea: OutputArea;
  private _sent = false;
  private _died = false;
  private _outcome: string | null = null;
  private _opened = new PromiseDelegate<string>();
}
