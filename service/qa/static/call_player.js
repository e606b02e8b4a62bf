// The call's player as the review page (review.js) and a calibration's blind scoring (calibration.js) both use
// it, over templates/_player.html: the transcript follows the audio and a click on a line seeks; the
// add-finding form shows the playhead's time; a finding picked on the timeline is heard from a little before
// it and opened in the findings table.

import { $, clock } from "./qa_common.js";
import { showFinding } from "./findings.js";
import { Player } from "./player.js";
import { Transcript } from "./transcript.js";

export const LEAD_IN_S = 2; // a finding is heard from a little before it, to hear what led to it

export function callPlayer() {
  const transcript = new Transcript($("transcript"), { onSeek: (t) => player.seek(t) });
  const player = new Player(
    { audio: $("audio"), canvas: $("waveform"), playhead: $("playhead"), timeline: $("timeline"), note: $("wave-note") },
    {
      onTime: (t) => {
        transcript.follow(t);
        $("add-time").textContent = clock(t);
      },
      onPick: (f) => {
        player.seek(Math.max(0, f.t - LEAD_IN_S), false);
        showFinding($("findings-body"), f.finding_id);
      },
    },
  );
  return { transcript, player };
}
