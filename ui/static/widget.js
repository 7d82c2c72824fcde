/* Concierge chat widget: placeholder, replaced by the full widget. */
(function () { "use strict"; })();
