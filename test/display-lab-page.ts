/**
 * Browser entry of the JupyterLab test page (bundled by esbuild in test/display-browser.test.ts): renders
 * saved notebook outputs with JupyterLab 4's own output area and MIME renderers, once trusted and once
 * untrusted, and records which MIME type the registry chose for each. Not part of the library build.
 */
import { OutputArea, OutputAreaModel } from "@jupyterlab/outputarea";
import { RenderMimeRegistry, standardRendererFactories } from "@jupyterlab/rendermime";
import vegaExtension from "@jupyterlab/vega5-extension";
import { Widget } from "@lumino/widgets";

interface LabCase {
  id: string;
  trusted: boolean;
  chosen: string | undefined;
}

declare global {
  interface Window {
    __OUTPUTS__: { output_type: string; data: Record<string, unknown>; metadata: Record<string, unknown> }[];
    __CASES__: LabCase[];
    __RENDERED__: boolean;
  }
}

// JupyterLab's default factories plus the vega 5 extension at the rank its extension declares (57), which is
// what a stock JupyterLab registers (the factory alone carries no rank and would fall behind image/png).
const rendermime = new RenderMimeRegistry({ initialFactories: standardRendererFactories });
const vega = vegaExtension as unknown as { rendererFactory: never; rank: number };
rendermime.addFactory(vega.rendererFactory, vega.rank);

window.__CASES__ = [];
for (const trusted of [true, false]) {
  window.__OUTPUTS__.forEach((output, i) => {
    const id = `${trusted ? "trusted" : "untrusted"}-${i}`;
    const heading = document.createElement("h3");
    heading.textContent = id;
    document.body.appendChild(heading);
    const model = new OutputAreaModel({ trusted });
    model.fromJSON([output as never]);
    const area = new OutputArea({ model, rendermime });
    area.node.setAttribute("data-case", id);
    Widget.attach(area, document.body);
    // The same call OutputArea makes: 'any' when trusted, 'ensure' (safe renderers only) when not.
    const chosen = rendermime.preferredMimeType(output.data as never, trusted ? "any" : "ensure");
    window.__CASES__.push({ id, trusted, chosen });
  });
}
window.__RENDERED__ = true;
